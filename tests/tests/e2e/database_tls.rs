//! The database settings' TLS modes against the stack's PostgreSQL, whose certificate names
//! `localhost` and 127.0.0.1 and is signed by the stack's CA: the asynchronous client of
//! `websentry_shared::database` (what the status page reads with) and the consumer's blocking one
//! check the server alike. A wrong name is given with the server's real address beside it
//! (`hostaddr`), so that only the certificate check can refuse it.

use std::net::IpAddr;

use websentry_consumer::database::{self, DatabaseArgs, DatabaseSettings};
use websentry_shared::database::tokio_postgres;
use websentry_tests::Stack;

/// A name the stack's certificate does not hold.
const WRONG_NAME: &str = "postgres.websentry.invalid";

/// One way of connecting, and what must come of it.
struct Case {
    sslmode: &'static str,
    /// The stack's CA, or one that did not sign the server's certificate.
    trusted_ca: bool,
    /// The stack's host, or [`WRONG_NAME`] (the tokio client only).
    right_name: bool,
    /// `None`: connects, over TLS unless `disable`; else what the refusal says.
    refused: Option<&'static str>,
}

const fn case(sslmode: &'static str, trusted_ca: bool, right_name: bool, refused: Option<&'static str>) -> Case {
    Case { sslmode, trusted_ca, right_name, refused }
}

impl Case {
    fn name(&self) -> String {
        let ca = if self.trusted_ca { "the stack's CA" } else { "another CA" };
        let name = if self.right_name { "the server's name" } else { "a wrong name" };
        format!("{} with {ca} and {name}", self.sslmode)
    }

    fn args(&self, stack: &Stack, database: &str) -> DatabaseArgs {
        let mut args = stack.database_args(database);
        args.database_sslmode = self.sslmode.into();
        if !self.trusted_ca {
            args.database_cafile = Some(stack.pki("untrusted-ca.crt").into());
        }
        if !self.right_name {
            args.database_host = Some(WRONG_NAME.into());
        }
        args
    }
}

const NOT_FOR_THIS_NAME: Option<&str> = Some("not valid for name");
const UNKNOWN_ISSUER: Option<&str> = Some("UnknownIssuer");

/// Runs `SELECT 1` and asks the server whether this connection is encrypted, with tokio-postgres
/// connecting to the stack's address whatever name the settings give.
async fn select_one(settings: &DatabaseSettings, address: IpAddr) -> Result<bool, String> {
    let (mut config, tls) = settings.tokio_config("websentry-test").map_err(|err| format!("{err:#}"))?;
    config.hostaddr(address);
    let connecting = tokio::time::timeout(settings.timeout, config.connect(tls));
    let (client, connection) = connecting.await.map_err(|_| "no answer in time".to_owned())?.map_err(chain)?;
    let connection = tokio::spawn(connection);
    let one: i32 = client.query_one("SELECT 1", &[]).await.map_err(chain)?.get(0);
    assert_eq!(one, 1);
    let row = client.query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]).await;
    let encrypted = row.map_err(chain)?.get(0);
    drop(client);
    connection.await.expect("the connection task").map_err(chain)?;
    Ok(encrypted)
}

/// An error and its sources on one line.
fn chain(err: tokio_postgres::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

fn assert_outcome(case: &Case, outcome: Result<bool, String>) {
    match (case.refused, outcome) {
        (None, Ok(encrypted)) => assert_eq!(encrypted, case.sslmode != "disable", "{}: encrypted?", case.name()),
        (None, Err(err)) => panic!("{}: refused, but must connect: {err}", case.name()),
        (Some(why), Ok(_)) => panic!("{}: connected, but must be refused ({why})", case.name()),
        (Some(why), Err(err)) => {
            assert!(err.contains("invalid peer certificate") && err.contains(why), "{}: {err}", case.name());
        }
    }
}

#[test]
fn the_async_client_checks_the_server_as_each_sslmode_says() {
    let stack = Stack::get();
    let database = stack.create_database();
    let address: IpAddr = stack.var("WEBSENTRY_DATABASE_HOST").parse().expect("the stack's host is an address");
    let cases = [
        case("verify-full", true, true, None),
        case("verify-full", true, false, NOT_FOR_THIS_NAME),
        case("verify-full", false, true, UNKNOWN_ISSUER),
        case("verify-ca", true, false, None),
        case("verify-ca", false, true, UNKNOWN_ISSUER),
        case("require", false, false, None),
        case("disable", false, false, None),
    ];
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");

    for case in cases {
        let settings = DatabaseSettings::try_from(&case.args(stack, &database.name)).expect("valid settings");
        let outcome = runtime.block_on(select_one(&settings, address));

        assert_outcome(&case, outcome);
    }
}

#[test]
fn the_consumers_client_checks_the_server_as_each_sslmode_says() {
    let stack = Stack::get();
    let database = stack.create_database();
    let cases = [
        case("verify-full", true, true, None),
        case("verify-full", false, true, UNKNOWN_ISSUER),
        case("verify-ca", true, true, None),
        case("verify-ca", false, true, UNKNOWN_ISSUER),
        case("require", false, true, None),
        case("disable", false, true, None),
    ];

    for case in cases {
        let settings = DatabaseSettings::try_from(&case.args(stack, &database.name)).expect("valid settings");
        let outcome = database::connect(&settings).map_err(|err| format!("{err:#}")).and_then(|mut client| {
            let row = client.query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]);
            row.map(|row| row.get(0)).map_err(|err| format!("{err:#}"))
        });

        assert_outcome(&case, outcome);
    }
}
