// A transactional writer for the end-to-end tests: Kafka's own Java producer with a transactional id,
// driven one command a line on standard input, so that a test decides what is committed, what is
// aborted and what is left open, and when. Compiled by the test harness (tests/src/transactions.rs)
// with javac against the broker's jars, once per test run.
//
//   java -cp "<kafka libs>/*:<classes>" TransactionalWriter <bootstrap servers> <topic> <transactional id>
//
// Commands (fields separated by a tab):
//   begin                              begin a transaction
//   send <partition> <key> <value>     send one record and wait for it to be written;
//                                      answers "ok <partition> <offset>"
//   commit | abort                     end the transaction
// Every other command is answered "ok"; a failure ends the program with status 1 and its cause on
// standard error. "ready" is printed once the producer holds its transactional id. At the end of the
// input the process halts without ending an open transaction, as a writer that crashed would: the
// broker aborts it after its timeout (transaction.timeout.ms, 60 s here).

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.Properties;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.StringSerializer;

public final class TransactionalWriter {
    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: TransactionalWriter <bootstrap servers> <topic> <transactional id>");
            System.exit(2);
        }
        String topic = args[1];
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        props.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, args[2]);
        props.put(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, "60000");
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        props.put(ProducerConfig.LINGER_MS_CONFIG, "0");

        KafkaProducer<String, String> producer = new KafkaProducer<>(props);
        try {
            producer.initTransactions();
            answer("ready");
            BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
            String line;
            while ((line = in.readLine()) != null) {
                String[] fields = line.split("\t", 4);
                switch (fields[0]) {
                    case "begin" -> {
                        producer.beginTransaction();
                        answer("ok");
                    }
                    case "send" -> {
                        if (fields.length != 4) {
                            throw new IllegalArgumentException("send needs a partition, a key and a value: " + line);
                        }
                        int partition = Integer.parseInt(fields[1]);
                        RecordMetadata written =
                            producer.send(new ProducerRecord<>(topic, partition, fields[2], fields[3])).get();
                        answer("ok " + written.partition() + " " + written.offset());
                    }
                    case "commit" -> {
                        producer.commitTransaction();
                        answer("ok");
                    }
                    case "abort" -> {
                        producer.abortTransaction();
                        answer("ok");
                    }
                    default -> throw new IllegalArgumentException("unknown command: " + line);
                }
            }
        } catch (Exception e) {
            e.printStackTrace();
            System.out.flush();
            Runtime.getRuntime().halt(1);
        }
        // No close(): closing would abort an open transaction, which is what a test leaves open.
        System.out.flush();
        Runtime.getRuntime().halt(0);
    }

    private static void answer(String line) {
        System.out.println(line);
        System.out.flush();
    }
}
