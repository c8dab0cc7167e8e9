//! The host link over plain TCP against the simulator and against hand-written peers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use smartpos_sim::net::ConnInfo;
use smartpos_terminal::link::{HostLink, LinkConfig, LinkError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use crate::support::{LONG, SHORT, plain, start_echo, start_with};

/// A raw listener on a free loopback port and a link config pointing at it.
async fn raw_peer() -> (TcpListener, LinkConfig) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let cfg = LinkConfig {
        connect_timeout: LONG,
        response_timeout: LONG,
        ..LinkConfig::plain(listener.local_addr().unwrap().to_string())
    };
    (listener, cfg)
}

#[tokio::test]
async fn round_trip_over_tcp() {
    let server = start_echo(false, "").await;
    let mut link = HostLink::connect(&plain(&server)).await.unwrap();
    link.send(b"0200 hello").await.unwrap();
    assert_eq!(link.recv(LONG).await.unwrap(), b"0200 hello");
    link.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn many_frames_in_order_including_max_size() {
    let server = start_echo(false, "").await;
    let mut link = HostLink::connect(&plain(&server)).await.unwrap();
    // Pipelined small frames: all sent before any answer is read.
    let bodies: Vec<Vec<u8>> = (0..200u32)
        .map(|i| i.to_be_bytes().repeat(1 + (i as usize % 50)))
        .collect();
    for body in &bodies {
        link.send(body).await.unwrap();
    }
    for body in &bodies {
        assert_eq!(&link.recv(LONG).await.unwrap(), body);
    }
    // One frame at each size edge, one at a time.
    for len in [1usize, 2, 255, 256, 4096, 65_534, 65_535] {
        let body: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        link.send(&body).await.unwrap();
        assert_eq!(link.recv(LONG).await.unwrap(), body, "len {len}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn send_refuses_unframeable_bodies() {
    let server = start_echo(false, "").await;
    let mut link = HostLink::connect(&plain(&server)).await.unwrap();
    assert_eq!(link.send(&[]).await, Err(LinkError::EmptyFrame));
    assert_eq!(
        link.send(&vec![0u8; 65_536]).await,
        Err(LinkError::FrameTooLong { len: 65_536 })
    );
    // Nothing was written: the link is still in step.
    link.send(b"ok").await.unwrap();
    assert_eq!(link.recv(LONG).await.unwrap(), b"ok");
    server.shutdown().await;
}

#[tokio::test]
async fn frame_split_across_tcp_writes_is_reassembled() {
    let (listener, cfg) = raw_peer().await;
    let peer = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        s.set_nodelay(true).unwrap();
        // Two frames: "ABCDE" then "xy", cut at every awkward place, with pauses.
        let wire = [
            0x00, 0x05, b'A', b'B', b'C', b'D', b'E', 0x00, 0x02, b'x', b'y',
        ];
        for chunk in [&wire[..1], &wire[1..3], &wire[3..8], &wire[8..]] {
            s.write_all(chunk).await.unwrap();
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        s
    });
    let mut link = HostLink::connect(&cfg).await.unwrap();
    assert_eq!(link.recv(LONG).await.unwrap(), b"ABCDE");
    assert_eq!(link.recv(LONG).await.unwrap(), b"xy");
    drop(peer.await.unwrap());
}

#[tokio::test]
async fn partial_frame_survives_a_timeout() {
    let (listener, cfg) = raw_peer().await;
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let peer = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        s.write_all(&[0x00, 0x04, b'h', b'a']).await.unwrap();
        go_rx.await.unwrap();
        s.write_all(b"lf").await.unwrap();
        s
    });
    let mut link = HostLink::connect(&cfg).await.unwrap();
    assert_eq!(link.recv(SHORT).await, Err(LinkError::Timeout));
    go_tx.send(()).unwrap();
    assert_eq!(link.recv(LONG).await.unwrap(), b"half");
    drop(peer.await.unwrap());
}

#[tokio::test]
async fn sim_reassembles_a_request_split_across_writes() {
    let server = start_echo(false, "").await;
    let mut s = TcpStream::connect(server.local_addr()).await.unwrap();
    s.set_nodelay(true).unwrap();
    for chunk in [&[0x00u8][..], &[0x03, b'a'], b"b", b"c"] {
        s.write_all(chunk).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut answer = [0u8; 5];
    s.read_exact(&mut answer).await.unwrap();
    assert_eq!(answer, [0x00, 0x03, b'a', b'b', b'c']);
    server.shutdown().await;
}

#[tokio::test]
async fn response_timeout_when_host_stays_silent() {
    let silent = |_: ConnInfo, _: &[u8]| Vec::new();
    let server = start_with(Arc::new(silent), false, "", 1).await;
    let mut link = HostLink::connect(&plain(&server)).await.unwrap();
    link.send(b"anyone?").await.unwrap();
    let started = Instant::now();
    let err = link.recv(SHORT).await.unwrap_err();
    assert_eq!(err, LinkError::Timeout);
    assert!(err.request_may_have_reached_host());
    assert!(started.elapsed() >= SHORT);
    server.shutdown().await;
}

#[tokio::test]
async fn connect_timeout_when_listener_backlog_is_full() {
    // A listener with the smallest backlog that never accepts: once its queue is full the
    // kernel drops further SYNs, so a connect hangs until our timeout.
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    let mut saturated = false;
    for _ in 0..64 {
        match tokio::time::timeout(Duration::from_millis(100), TcpStream::connect(addr)).await {
            Ok(Ok(s)) => fillers.push(s),
            Ok(Err(e)) => panic!("filler connect failed: {e}"),
            Err(_) => {
                saturated = true;
                break;
            }
        }
    }
    assert!(
        saturated,
        "backlog never filled after {} connects",
        fillers.len()
    );
    let cfg = LinkConfig {
        connect_timeout: SHORT,
        ..LinkConfig::plain(addr.to_string())
    };
    let started = Instant::now();
    let err = HostLink::connect(&cfg).await.unwrap_err();
    assert_eq!(err, LinkError::ConnectTimeout);
    assert!(!err.request_may_have_reached_host());
    assert!(started.elapsed() >= SHORT);
    drop(listener);
}

#[tokio::test]
async fn connection_refused_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let err = HostLink::connect(&LinkConfig::plain(addr.to_string()))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        LinkError::Connect {
            kind: std::io::ErrorKind::ConnectionRefused
        }
    );
    assert!(!err.request_may_have_reached_host());
}

#[tokio::test]
async fn host_closing_the_connection_is_closed() {
    let (listener, cfg) = raw_peer().await;
    let peer = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut header = [0u8; 2];
        s.read_exact(&mut header).await.unwrap();
        // Read the request, then hang up without answering.
    });
    let mut link = HostLink::connect(&cfg).await.unwrap();
    link.send(b"request").await.unwrap();
    peer.await.unwrap();
    let err = link.recv(LONG).await.unwrap_err();
    assert!(
        matches!(err, LinkError::Closed | LinkError::Io { .. }),
        "{err:?}"
    );
    assert!(err.request_may_have_reached_host());
}

#[tokio::test]
async fn zero_length_frame_from_host_is_rejected() {
    let (listener, cfg) = raw_peer().await;
    let peer = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        s.write_all(&[0x00, 0x00]).await.unwrap();
        s
    });
    let mut link = HostLink::connect(&cfg).await.unwrap();
    let err = link.recv(LONG).await.unwrap_err();
    assert_eq!(err, LinkError::ReceivedEmptyFrame);
    assert!(err.request_may_have_reached_host());
    drop(peer.await.unwrap());
}

#[tokio::test]
async fn close_sends_fin_to_the_host() {
    let (listener, cfg) = raw_peer().await;
    let peer = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).await.unwrap();
        rest
    });
    let mut link = HostLink::connect(&cfg).await.unwrap();
    link.send(b"bye").await.unwrap();
    link.close().await;
    assert_eq!(peer.await.unwrap(), [0x00, 0x03, b'b', b'y', b'e']);
}
