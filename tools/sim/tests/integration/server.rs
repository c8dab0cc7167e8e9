//! The simulator's server, driven by raw tokio clients on loopback.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use smartpos_sim::fault::{FaultPlan, FaultSet};
use smartpos_sim::net::{
    ConnInfo, EchoHandler, FrameHandler, Server, ServerConfig, ServerHandle, SimNetError,
    TlsServerConfig, test_tls_config,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LONG: Duration = Duration::from_secs(5);

async fn start(handler: Arc<dyn FrameHandler>, faults: &str, seed: u64) -> ServerHandle {
    let cfg = ServerConfig {
        faults: FaultPlan::parse(faults).unwrap(),
        seed,
        ..ServerConfig::default()
    };
    Server::bind(cfg, handler).await.unwrap().spawn()
}

async fn write_frame(s: &mut TcpStream, body: &[u8]) {
    let mut wire = (body.len() as u16).to_be_bytes().to_vec();
    wire.extend_from_slice(body);
    s.write_all(&wire).await.unwrap();
}

async fn read_frame(s: &mut TcpStream) -> Vec<u8> {
    tokio::time::timeout(LONG, async {
        let mut header = [0u8; 2];
        s.read_exact(&mut header).await.unwrap();
        let mut body = vec![0u8; usize::from(u16::from_be_bytes(header))];
        s.read_exact(&mut body).await.unwrap();
        body
    })
    .await
    .unwrap()
}

/// Reads until EOF (or reset) and returns what came; fails the test if the peer stays open.
async fn read_until_closed(s: &mut TcpStream) -> Vec<u8> {
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(LONG, s.read_to_end(&mut rest))
        .await
        .unwrap();
    rest
}

/// Answers with `conn_id` and `request_seq` so tests can check them.
fn ids_handler(conn: ConnInfo, request: &[u8]) -> Vec<Vec<u8>> {
    let mut answer = conn.conn_id.to_be_bytes().to_vec();
    answer.extend_from_slice(&conn.request_seq.to_be_bytes());
    answer.extend_from_slice(request);
    vec![answer]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_150_connections_concurrently() {
    let server = start(Arc::new(ids_handler), "", 0).await;
    let addr = server.local_addr();
    // All connections are opened first, so they are really open at the same time.
    let mut streams = Vec::new();
    for _ in 0..150 {
        streams.push(TcpStream::connect(addr).await.unwrap());
    }
    let tasks: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(i, mut s)| {
            tokio::spawn(async move {
                let mut conn_id = None;
                for seq in 0..5u64 {
                    let body = format!("client {i} request {seq}").into_bytes();
                    write_frame(&mut s, &body).await;
                    let answer = read_frame(&mut s).await;
                    let (id, rest) = answer.split_at(8);
                    let (got_seq, echoed) = rest.split_at(8);
                    assert_eq!(got_seq, seq.to_be_bytes());
                    assert_eq!(echoed, body.as_slice());
                    let id = u64::from_be_bytes(id.try_into().unwrap());
                    assert_eq!(
                        *conn_id.get_or_insert(id),
                        id,
                        "conn_id stable per connection"
                    );
                }
                conn_id.unwrap()
            })
        })
        .collect();
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap());
    }
    ids.sort_unstable();
    assert_eq!(
        ids,
        (0..150).collect::<Vec<u64>>(),
        "each connection its own id"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn zero_length_frame_closes_only_that_connection() {
    let server = start(Arc::new(EchoHandler), "", 0).await;
    let mut bad = TcpStream::connect(server.local_addr()).await.unwrap();
    let mut good = TcpStream::connect(server.local_addr()).await.unwrap();
    bad.write_all(&[0x00, 0x00, 0x00, 0x01, 0x41])
        .await
        .unwrap();
    assert!(read_until_closed(&mut bad).await.is_empty());
    write_frame(&mut good, b"still here").await;
    assert_eq!(read_frame(&mut good).await, b"still here");
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_connections_and_stops_accepting() {
    let server = start(Arc::new(EchoHandler), "", 0).await;
    let addr = server.local_addr();
    let mut open = TcpStream::connect(addr).await.unwrap();
    write_frame(&mut open, b"ping").await;
    assert_eq!(read_frame(&mut open).await, b"ping");
    server.shutdown().await;
    assert!(read_until_closed(&mut open).await.is_empty());
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn dropping_the_handle_stops_the_server() {
    let server = start(Arc::new(EchoHandler), "", 0).await;
    let addr = server.local_addr();
    let mut open = TcpStream::connect(addr).await.unwrap();
    write_frame(&mut open, b"ping").await;
    assert_eq!(read_frame(&mut open).await, b"ping");
    drop(server);
    assert!(read_until_closed(&mut open).await.is_empty());
}

#[tokio::test]
async fn bind_errors_are_reported() {
    let first = start(Arc::new(EchoHandler), "", 0).await;
    let taken = ServerConfig {
        listen: first.local_addr().to_string(),
        ..ServerConfig::default()
    };
    let err = Server::bind(taken, Arc::new(EchoHandler))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        SimNetError::Bind {
            addr: first.local_addr().to_string(),
            kind: std::io::ErrorKind::AddrInUse
        }
    );
    let nonsense = ServerConfig {
        listen: "not an address".to_owned(),
        ..ServerConfig::default()
    };
    assert!(matches!(
        Server::bind(nonsense, Arc::new(EchoHandler)).await,
        Err(SimNetError::Bind { .. })
    ));
    first.shutdown().await;
}

#[tokio::test]
async fn bad_tls_identity_is_reported_at_bind() {
    let cfg = ServerConfig {
        tls: Some(TlsServerConfig {
            cert_chain_pem: Vec::new(),
            key_pem: Vec::new(),
        }),
        ..ServerConfig::default()
    };
    assert!(matches!(
        Server::bind(cfg, Arc::new(EchoHandler)).await,
        Err(SimNetError::Tls { .. })
    ));
}

#[tokio::test]
async fn tls_server_survives_a_client_that_sends_junk() {
    let cfg = ServerConfig {
        tls: Some(test_tls_config()),
        ..ServerConfig::default()
    };
    let server = Server::bind(cfg, Arc::new(EchoHandler))
        .await
        .unwrap()
        .spawn();
    for _ in 0..3 {
        let mut junk = TcpStream::connect(server.local_addr()).await.unwrap();
        junk.write_all(&[0xFF; 64]).await.unwrap();
        // The server gives up on the handshake; whatever it says (an alert), it then closes.
        read_until_closed(&mut junk).await;
    }
    server.shutdown().await;
}

/// Sends `n` requests on one connection, each after the handler saw the previous one (some
/// faults never answer, so answers are not awaited), and returns the fault sets the handler
/// saw, in order. The plan must not close connections.
async fn faults_seen(plan: &str, seed: u64, n: usize) -> Vec<FaultSet> {
    let seen: Arc<Mutex<Vec<FaultSet>>> = Arc::default();
    let record = Arc::clone(&seen);
    let handler = move |conn: ConnInfo, request: &[u8]| {
        record.lock().unwrap().push(conn.faults);
        vec![request.to_vec()]
    };
    let server = start(Arc::new(handler), plan, seed).await;
    let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
    for i in 0..n {
        write_frame(&mut stream, &(i as u32).to_be_bytes()).await;
        tokio::time::timeout(LONG, async {
            while seen.lock().unwrap().len() <= i {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .unwrap();
    }
    server.shutdown().await;
    seen.lock().unwrap().clone()
}

#[tokio::test]
async fn same_seed_gives_same_faults_other_seed_differs() {
    let plan = "drop:0.2,duplicate:0.2,late:0.2,delay:1ms:0.1,bad-mac:0.5,wrong-stan:0.3";
    let a = faults_seen(plan, 77, 60).await;
    let b = faults_seen(plan, 77, 60).await;
    let c = faults_seen(plan, 78, 60).await;
    assert_eq!(a.len(), 60);
    assert_eq!(a, b);
    assert_ne!(a, c);
    // The plan's kinds all show up in 60 draws (each has p >= 0.1).
    assert!(a.iter().any(|f| f.bad_mac) && a.iter().any(|f| f.wrong_stan));
    assert!(a.iter().any(|f| f.transport.is_none()));
}

#[tokio::test]
async fn garbage_bytes_are_deterministic_per_seed() {
    async fn garbage_answer(seed: u64) -> Vec<u8> {
        let server = start(Arc::new(EchoHandler), "garbage", seed).await;
        let mut s = TcpStream::connect(server.local_addr()).await.unwrap();
        write_frame(&mut s, &[0u8; 32]).await;
        let answer = read_frame(&mut s).await;
        server.shutdown().await;
        answer
    }
    let a = garbage_answer(5).await;
    assert_eq!(a.len(), 32);
    assert_ne!(a, [0u8; 32]);
    assert_eq!(a, garbage_answer(5).await);
    assert_ne!(a, garbage_answer(6).await);
}

#[tokio::test]
async fn truncate_promises_more_than_it_sends() {
    let server = start(Arc::new(EchoHandler), "truncate", 0).await;
    let mut s = TcpStream::connect(server.local_addr()).await.unwrap();
    write_frame(&mut s, &[9u8; 40]).await;
    let got = read_until_closed(&mut s).await;
    assert_eq!(got[..2], [0x00, 40]);
    assert_eq!(got.len(), 2 + 20);
    server.shutdown().await;
}

#[tokio::test]
async fn handler_answers_that_cannot_be_framed_are_skipped() {
    let handler = |_: ConnInfo, _: &[u8]| vec![Vec::new(), vec![0u8; 70_000], b"ok".to_vec()];
    let server = start(Arc::new(handler), "", 0).await;
    let mut s = TcpStream::connect(server.local_addr()).await.unwrap();
    write_frame(&mut s, b"x").await;
    assert_eq!(read_frame(&mut s).await, b"ok");
    server.shutdown().await;
}
