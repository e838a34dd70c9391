//! The machine's two ceilings, measured without the broker: loopback TCP with one stream
//! (iperf3 when installed, else a small tokio blaster here) and sequential 1 MiB writes each
//! followed by fdatasync (what `dd bs=1M oflag=dsync` does). Every measurement is bounded in
//! time; a ceiling that cannot be measured is reported as n/a, never as a failure.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::report::Ceiling;

const MIB: f64 = 1024.0 * 1024.0;
const CHUNK: usize = 1 << 20;
/// The disk ceiling stops after this long even if not all bytes are written.
const DISK_LIMIT: Duration = Duration::from_secs(90);
const IPERF_EXTRA: Duration = Duration::from_secs(15);

pub fn loopback_tcp(secs: u64) -> Ceiling {
    let secs = secs.clamp(1, 30);
    let found = Command::new("iperf3")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let (how, result) = if found.is_ok_and(|s| s.success()) {
        ("iperf3 -c 127.0.0.1 (1 stream)", iperf3(secs))
    } else {
        (
            "tokio TCP blaster (iperf3 not installed), 1 stream, 256 KiB writes",
            blaster(secs),
        )
    };
    match result {
        Ok((bytes, elapsed)) => Ceiling {
            name: "loopback TCP, 1 stream".into(),
            how: how.into(),
            mb_per_sec: Some(bytes as f64 / MIB / elapsed),
            bytes,
            secs: elapsed,
            note: None,
        },
        Err(e) => Ceiling {
            name: "loopback TCP, 1 stream".into(),
            how: how.into(),
            mb_per_sec: None,
            bytes: 0,
            secs: 0.0,
            note: Some(format!("{e:#}")),
        },
    }
}

fn iperf3(secs: u64) -> Result<(u64, f64)> {
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut server = Command::new("iperf3")
        .args(["-s", "-1", "-B", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("start iperf3 server")?;
    std::thread::sleep(Duration::from_millis(300));
    let client = Command::new("iperf3")
        .args([
            "-c",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-t",
            &secs.to_string(),
            "-J",
        ])
        .stderr(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .context("start iperf3 client")?;
    let output = wait_bounded(client, Duration::from_secs(secs) + IPERF_EXTRA);
    let _ = server.kill();
    let _ = server.wait();
    let output = output?;
    let json: serde_json::Value = serde_json::from_slice(&output).context("iperf3 -J output")?;
    let sum = &json["end"]["sum_received"];
    let bytes = sum["bytes"]
        .as_u64()
        .ok_or_else(|| anyhow!("iperf3: no end.sum_received.bytes"))?;
    let seconds = sum["seconds"]
        .as_f64()
        .ok_or_else(|| anyhow!("iperf3: no end.sum_received.seconds"))?;
    Ok((bytes, seconds))
}

fn wait_bounded(mut child: std::process::Child, limit: Duration) -> Result<Vec<u8>> {
    use std::io::Read;
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait()? {
            let mut out = Vec::new();
            if let Some(mut s) = child.stdout.take() {
                s.read_to_end(&mut out)?;
            }
            if !status.success() {
                bail!("iperf3 client exited with {status}");
            }
            return Ok(out);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("iperf3 client still running after {limit:?}; killed");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One stream over loopback: a writer sending 256 KiB buffers, a reader counting them.
fn blaster(secs: u64) -> Result<(u64, f64)> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let reader = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await?;
            let mut buf = vec![0u8; 256 * 1024];
            let mut total: u64 = 0;
            let start = Instant::now();
            loop {
                let n = sock.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                total += n as u64;
            }
            Ok::<_, std::io::Error>((total, start.elapsed().as_secs_f64()))
        });
        let mut sock = tokio::net::TcpStream::connect(addr).await?;
        let buf = vec![0x5au8; 256 * 1024];
        let end = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < end {
            sock.write_all(&buf).await?;
        }
        sock.shutdown().await?;
        drop(sock);
        let (total, elapsed) = reader.await??;
        Ok((total, elapsed))
    })
}

/// Sequential 1 MiB writes, each followed by fdatasync, to a scratch file in `dir`.
pub fn disk_dsync(dir: &Path, bytes: u64) -> Ceiling {
    let name = format!("sequential write + fdatasync per 1 MiB, {} MiB", bytes >> 20);
    let how = format!("Rust writer in {} (= dd bs=1M oflag=dsync)", dir.display());
    match write_dsync(dir, bytes) {
        Ok((written, secs, note)) => Ceiling {
            name,
            how,
            mb_per_sec: Some(written as f64 / MIB / secs),
            bytes: written,
            secs,
            note,
        },
        Err(e) => Ceiling {
            name,
            how,
            mb_per_sec: None,
            bytes: 0,
            secs: 0.0,
            note: Some(format!("{e:#}")),
        },
    }
}

fn write_dsync(dir: &Path, bytes: u64) -> Result<(u64, f64, Option<String>)> {
    let path = dir.join(format!("sluice-bench-dsync-{}.tmp", std::process::id()));
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&path)
        .with_context(|| format!("create {}", path.display()))?;
    // Not zeros: a filesystem or device that special-cases zero pages would flatter the figure.
    let chunk: Vec<u8> = (0..CHUNK).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let start = Instant::now();
    let mut written: u64 = 0;
    let mut note = None;
    let result = (|| -> Result<()> {
        while written < bytes {
            if start.elapsed() > DISK_LIMIT {
                note = Some(format!("stopped at the {DISK_LIMIT:?} bound"));
                break;
            }
            file.write_all(&chunk)?;
            file.sync_data()?;
            written += CHUNK as u64;
        }
        Ok(())
    })();
    let secs = start.elapsed().as_secs_f64();
    drop(file);
    let _ = fs::remove_file(&path);
    result?;
    Ok((written, secs, note))
}
