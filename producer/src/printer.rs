//! A dry run's output: each report as one JSON line on stdout, in the order the probes end.

use std::io::Write;

use tokio::sync::mpsc;
use websentry_shared::report::Report;

/// Prints each report of `reports` as it comes, until the queue is closed; returns those that
/// could not be written. The reports that are ready at once (up to the queue's capacity) go out in
/// one write.
pub(crate) async fn print_until_closed(mut reports: mpsc::Receiver<Report>) -> Vec<Report> {
    let at_once = reports.max_capacity();
    let mut unwritten = Vec::new();
    let mut ready = Vec::new();
    let mut lines = Vec::new();
    while reports.recv_many(&mut ready, at_once).await > 0 {
        lines.clear();
        for report in &ready {
            report.write_json(&mut lines);
            lines.push(b'\n');
        }
        let mut out = std::io::stdout().lock();
        if out.write_all(&lines).and_then(|()| out.flush()).is_err() {
            unwritten.append(&mut ready);
        }
        ready.clear();
    }
    unwritten
}
