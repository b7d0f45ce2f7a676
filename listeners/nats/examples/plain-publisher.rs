//! The benchmark's baseline (scripts/bench-nats.sh): a plain async-nats
//! publisher with none of the listener's code. It reads a line journal,
//! sends one message per line with the same headers the listener sends
//! (`Nats-Msg-Id` and the `Logdaemon-*` position headers), keeps the same
//! number of publishes in flight and takes the acknowledgements in order,
//! like the listener. With `checked`, it guards messages like the listener
//! in exactly-once mode: the first one sent with nothing in flight with
//! `Nats-Expected-Last-Subject-Sequence`, every other with
//! `Nats-Expected-Last-Msg-Id` of the message before it.
//!
//! Usage: plain-publisher URL STREAM SUBJECT FILE WINDOW checked|plain
//! Prints `entries BYTES SECONDS`.

use std::collections::VecDeque;
use std::time::Instant;

use async_nats::jetstream::{self, message::PublishMessage, stream};
use async_nats::HeaderMap;

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let a: Vec<String> = std::env::args().collect();
    assert!(
        a.len() == 7,
        "usage: plain-publisher URL STREAM SUBJECT FILE WINDOW checked|plain"
    );
    let (url, stream_name, subject, file) = (&a[1], &a[2], &a[3], &a[4]);
    let window: usize = a[5].parse().expect("WINDOW is a number");
    let checked = a[6] == "checked";
    let data = std::fs::read(file).expect("read FILE");
    let client = async_nats::connect(url.as_str()).await.expect("connect");
    let js = jetstream::ContextBuilder::new()
        .max_ack_inflight(window * 2 + 16)
        .build(client);
    js.get_or_create_stream(stream::Config {
        name: stream_name.clone(),
        subjects: vec![subject.clone()],
        ..Default::default()
    })
    .await
    .expect("stream");

    let start = Instant::now();
    let mut inflight = VecDeque::new();
    let (mut offset, mut line, mut count) = (0usize, 1u64, 0u64);
    let mut last_seq = 0u64;
    let mut prev_id = String::new();
    for raw in data.split_inclusive(|&b| b == b'\n') {
        // The listener's id shape: host, journal, writer id, position.
        let id = format!("bench:app:0123456789abcdef:1:{offset}");
        let mut h = HeaderMap::new();
        h.insert("Nats-Msg-Id", id.as_str());
        h.insert("Logdaemon-Host", "bench");
        h.insert("Logdaemon-Journal", "app");
        h.insert("Logdaemon-Sequence", "1");
        h.insert("Logdaemon-Offset", offset.to_string().as_str());
        h.insert("Logdaemon-Line", line.to_string().as_str());
        h.insert("Logdaemon-Writer", "0123456789abcdef");
        if checked {
            if inflight.is_empty() {
                h.insert(
                    "Nats-Expected-Last-Subject-Sequence",
                    last_seq.to_string().as_str(),
                );
            } else {
                h.insert("Nats-Expected-Last-Msg-Id", prev_id.as_str());
            }
        }
        let m = PublishMessage::build()
            .payload(bytes::Bytes::copy_from_slice(raw))
            .headers(h);
        inflight.push_back(js.send_publish(subject.clone(), m).await.expect("send"));
        if inflight.len() >= window {
            let ack = inflight.pop_front().unwrap().await.expect("ack");
            last_seq = ack.sequence;
        }
        prev_id = id;
        offset += raw.len();
        line += 1;
        count += 1;
    }
    while let Some(f) = inflight.pop_front() {
        f.await.expect("ack");
    }
    println!(
        "{count} {} {:.3}",
        data.len(),
        start.elapsed().as_secs_f64()
    );
}
