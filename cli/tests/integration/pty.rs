//! A command in a real terminal (openpty(3)): what it prints, keys typed into it, its exit.
//! `identity login` behaves as it does for a person only when stdin is a terminal.

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Pty {
    child: Child,
    master: std::fs::File,
    output: Arc<Mutex<String>>,
}

impl Pty {
    /// Starts `cmd` with its stdin, stdout and stderr on a new terminal.
    pub fn spawn(mut cmd: Command) -> Self {
        let (mut master, mut slave) = (-1, -1);
        // SAFETY: openpty writes two new descriptors into the two integers; the null
        // pointers ask for no name, default terminal settings and window size.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "openpty failed");
        // SAFETY: both descriptors were just opened by openpty and are owned here alone.
        let (master, slave) =
            unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        let child = cmd.spawn().expect("start the command in a terminal");
        // The parent's copies of the terminal's slave side close with `cmd`.
        drop(cmd);
        let master = std::fs::File::from(master);
        let mut reader = master.try_clone().unwrap();
        let output = Arc::new(Mutex::new(String::new()));
        let sink = output.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends with EIO once the command has exited and the terminal closed.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Self {
            child,
            master,
            output,
        }
    }

    /// Everything printed so far.
    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Waits (at most `secs`) until the output contains `text`; the output then.
    pub async fn wait_for(&self, text: &str, secs: u64) -> Result<String, String> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let out = self.output();
            if out.contains(text) {
                return Ok(out);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "waited {secs} s for {text:?}; the terminal shows:\n{out}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Types `keys`.
    pub fn type_keys(&mut self, keys: &str) {
        self.master.write_all(keys.as_bytes()).unwrap();
        self.master.flush().unwrap();
    }

    /// Waits (at most `secs`) for the command to exit.
    pub async fn exit(&mut self, secs: u64) -> Result<ExitStatus, String> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                // Let the reader take what was printed last.
                tokio::time::sleep(Duration::from_millis(100)).await;
                return Ok(status);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                return Err(format!(
                    "still running after {secs} s; the terminal shows:\n{}",
                    self.output()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
