//! Each simulator fault kind, observed through the host link (plain TCP; one TLS case).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use smartpos_sim::fault::FaultSet;
use smartpos_sim::net::{ConnInfo, TEST_CA_PEM};
use smartpos_terminal::link::{HostLink, LinkError};

use crate::support::{LONG, SHORT, plain, start_echo, start_with, tls};

#[tokio::test]
async fn drop_fault_is_a_timeout() {
    let server = start_echo(false, "drop").await;
    let mut link = HostLink::connect(&plain(&server)).await.unwrap();
    link.send(b"lost").await.unwrap();
    let err = link.recv(SHORT).await.unwrap_err();
    assert_eq!(err, LinkError::Timeout);
    assert!(err.request_may_have_reached_host());
    server.shutdown().await;
}

#[tokio::test]
async fn close_fault_is_closed() {
    let server = start_echo(false, "close").await;
    let mut link = HostLink::connect(&plain(&server)).await.unwrap();
    link.send(b"hang up on me").await.unwrap();
    let err = link.recv(LONG).await.unwrap_err();
    assert_eq!(err, LinkError::Closed);
    assert!(err.request_may_have_reached_host());
    server.shutdown().await;
}

#[tokio::test]
async fn garbage_fault_answers_different_bytes_of_the_same_length() {
    let server = start_echo(false, "garbage").await;
    let mut link = HostLink::connect(&plain(&server)).await.unwrap();
    let body = [0x5Au8; 64];
    link.send(&body).await.unwrap();
    let answer = link.recv(LONG).await.unwrap();
    assert_eq!(answer.len(), body.len());
    assert_ne!(answer, body);
    server.shutdown().await;
}

#[tokio::test]
async fn truncate_fault_is_closed_mid_frame() {
    let server = start_echo(false, "truncate").await;
    let mut link = HostLink::connect(&plain(&server)).await.unwrap();
    link.send(&[1u8; 40]).await.unwrap();
    let err = link.recv(LONG).await.unwrap_err();
    assert!(
        matches!(err, LinkError::Closed | LinkError::Io { .. }),
        "{err:?}"
    );
    assert!(err.request_may_have_reached_host());
    server.shutdown().await;
}

#[tokio::test]
async fn truncate_fault_over_tls_is_closed_or_io() {
    let server = start_echo(true, "truncate").await;
    let mut link = HostLink::connect(&tls(&server, TEST_CA_PEM, "localhost", None))
        .await
        .unwrap();
    link.send(&[2u8; 40]).await.unwrap();
    let err = link.recv(LONG).await.unwrap_err();
    assert!(
        matches!(err, LinkError::Closed | LinkError::Io { .. }),
        "{err:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn duplicate_fault_sends_two_frames() {
    let server = start_echo(false, "duplicate").await;
    let mut link = HostLink::connect(&plain(&server)).await.unwrap();
    link.send(b"twice").await.unwrap();
    assert_eq!(link.recv(LONG).await.unwrap(), b"twice");
    assert_eq!(link.recv(LONG).await.unwrap(), b"twice");
    assert_eq!(link.recv(SHORT).await, Err(LinkError::Timeout));
    server.shutdown().await;
}

#[tokio::test]
async fn late_fault_delivers_previous_answer_first() {
    let server = start_echo(false, "late").await;
    let mut link = HostLink::connect(&plain(&server)).await.unwrap();
    link.send(b"first").await.unwrap();
    assert_eq!(link.recv(SHORT).await, Err(LinkError::Timeout));
    link.send(b"second").await.unwrap();
    // The held answer to "first" comes as soon as "second" arrives ...
    assert_eq!(link.recv(LONG).await.unwrap(), b"first");
    // ... and "second" is itself late (probability 1).
    assert_eq!(link.recv(SHORT).await, Err(LinkError::Timeout));
    link.send(b"third").await.unwrap();
    assert_eq!(link.recv(LONG).await.unwrap(), b"second");
    server.shutdown().await;
}

#[tokio::test]
async fn delay_fault_answers_after_the_delay() {
    let server = start_echo(false, "delay:400ms").await;
    let mut link = HostLink::connect(&plain(&server)).await.unwrap();
    let started = Instant::now();
    link.send(b"slow").await.unwrap();
    assert_eq!(
        link.recv(Duration::from_millis(100)).await,
        Err(LinkError::Timeout)
    );
    assert_eq!(link.recv(LONG).await.unwrap(), b"slow");
    assert!(started.elapsed() >= Duration::from_millis(400));
    server.shutdown().await;
}

#[tokio::test]
async fn message_level_faults_reach_the_handler_and_the_answer_still_flows() {
    let seen: Arc<Mutex<Vec<FaultSet>>> = Arc::default();
    let record = Arc::clone(&seen);
    let handler = move |conn: ConnInfo, request: &[u8]| {
        record.lock().unwrap().push(conn.faults);
        vec![request.to_vec()]
    };
    let server = start_with(Arc::new(handler), false, "bad-mac,wrong-stan", 9).await;
    let mut link = HostLink::connect(&plain(&server)).await.unwrap();
    link.send(b"mac me").await.unwrap();
    assert_eq!(link.recv(LONG).await.unwrap(), b"mac me");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![FaultSet {
            transport: None,
            bad_mac: true,
            wrong_stan: true
        }]
    );
    server.shutdown().await;
}

#[tokio::test]
async fn handler_processes_requests_whose_answer_is_dropped() {
    // A host that never answered may still have approved: the handler must see the request.
    let count = Arc::new(Mutex::new(0u32));
    let counter = Arc::clone(&count);
    let handler = move |_: ConnInfo, request: &[u8]| {
        *counter.lock().unwrap() += 1;
        vec![request.to_vec()]
    };
    let server = start_with(Arc::new(handler), false, "drop", 3).await;
    let mut link = HostLink::connect(&plain(&server)).await.unwrap();
    link.send(b"approve me").await.unwrap();
    assert_eq!(link.recv(SHORT).await, Err(LinkError::Timeout));
    assert_eq!(*count.lock().unwrap(), 1);
    server.shutdown().await;
}
