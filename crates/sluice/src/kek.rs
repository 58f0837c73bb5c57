//! Where key-encryption keys come from when not from the key folder: the environment
//! (`SLUICE_KEK_V<N>=<base64>`, as a KMS or Vault agent injects them) or an operator's command
//! (`--kek-command`, which asks a KMS or Vault and prints the keys). The keys themselves are never
//! printed, logged or written anywhere by Sluice.

use std::io::Read;
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine;
use sluice_server::keys::KekVersions;

/// How long a key command may take before the server refuses to start.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

fn decode(text: &str, what: &str) -> anyhow::Result<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| anyhow::anyhow!("{what} is not base64"))
}

/// The keys a command printed: one per line as `<version> <base64>` (or `<version>:<base64>`,
/// `<version>=<base64>`); a single bare `<base64>` line is version 1 (what
/// `aws kms decrypt ... --query Plaintext --output text` prints). Messages never quote a line.
pub fn parse_command_output(output: &str) -> anyhow::Result<KekVersions> {
    let lines: Vec<&str> = output.lines().map(str::trim).filter(|line| !line.is_empty()).collect();
    let versioned_with_equals = |line: &str| {
        line.split_once('=')
            .is_some_and(|(version, _)| !version.is_empty() && version.chars().all(|c| c.is_ascii_digit()))
    };
    if let [only] = lines.as_slice()
        && !only.contains([' ', ':', '\t'])
        && !versioned_with_equals(only)
    {
        return Ok(vec![(1, decode(only, "the key the command printed")?)]);
    }
    let mut versions = Vec::new();
    for (number, line) in lines.iter().enumerate() {
        let what = format!("line {} of the key command's output", number + 1);
        let (version, key) = line
            .split_once([' ', ':', '\t'])
            .or_else(|| {
                // `=` also ends base64 padding: split at the first one only if a number precedes it.
                line.split_once('=')
                    .filter(|(version, _)| version.chars().all(|c| c.is_ascii_digit()))
            })
            .with_context(|| format!("{what} is not '<version> <base64 key>'"))?;
        let version: u32 = version
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("{what} does not start with a version number"))?;
        if versions.iter().any(|(seen, _)| *seen == version) {
            bail!("{what} repeats version {version}");
        }
        versions.push((version, decode(key, &what)?));
    }
    if versions.is_empty() {
        bail!("the key command printed no key");
    }
    Ok(versions)
}

/// Runs the operator's command through `/bin/sh -c` with the operator's environment (a Vault
/// token, AWS credentials for KMS) and reads the keys from its standard output; its standard
/// error goes to ours.
pub fn from_command(command: &str) -> anyhow::Result<KekVersions> {
    from_command_within(command, COMMAND_TIMEOUT)
}

#[allow(
    clippy::disallowed_methods,
    reason = "the operator's key command runs once at start, before anything else; it is configuration, not a task"
)]
fn from_command_within(command: &str, timeout: Duration) -> anyhow::Result<KekVersions> {
    let mut child = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .context("cannot start the key command")?;
    let mut stdout = child.stdout.take().context("the key command has no output")?;
    // The output is read on its own thread and handed over through a channel, so a command that
    // leaves a background process holding its stdout cannot hang the start past the timeout.
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut output = Vec::new();
        let _ = sender.send(stdout.read_to_end(&mut output).map(|_| output));
    });
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            bail!("the key command did not finish within {} s", timeout.as_secs());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let remaining = timeout.saturating_sub(started.elapsed()).max(Duration::from_secs(1));
    let output = receiver
        .recv_timeout(remaining)
        .map_err(|_| anyhow::anyhow!("the key command's output did not end (a process it started still holds it)"))??;
    if !status.success() {
        bail!("the key command failed ({status})");
    }
    let text = String::from_utf8(output).map_err(|_| anyhow::anyhow!("the key command printed something not text"))?;
    let versions = parse_command_output(&text)?;
    eprintln!(
        "sluice: using {} key-encryption key version(s) from the key command",
        versions.len()
    );
    Ok(versions)
}

/// `SLUICE_KEK_V<N>=<base64 of 32 bytes>` variables, if any is set.
#[allow(clippy::disallowed_methods, reason = "the binary is where configuration is read")]
pub fn from_environment() -> anyhow::Result<Option<KekVersions>> {
    let mut versions = Vec::new();
    for (name, value) in std::env::vars() {
        let Some(version) = name.strip_prefix("SLUICE_KEK_V") else {
            continue;
        };
        let version: u32 = version
            .parse()
            .map_err(|_| anyhow::anyhow!("{name}: the suffix must be a version number"))?;
        versions.push((version, decode(&value, &name)?));
    }
    if versions.is_empty() {
        return Ok(None);
    }
    eprintln!(
        "sluice: using {} key-encryption key version(s) from the environment",
        versions.len()
    );
    Ok(Some(versions))
}

/// The keys from the command when one is given, else from the environment, else `None` (the
/// key folder).
pub fn versions(command: Option<&str>) -> anyhow::Result<Option<KekVersions>> {
    match command {
        Some(command) => from_command(command).map(Some),
        None => from_environment(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn reads_versioned_lines_and_a_single_bare_key() {
        let key: Vec<u8> = (0..32).collect();
        assert_eq!(
            parse_command_output(&format!("{KEY}\n")).expect("bare"),
            vec![(1, key.clone())]
        );
        assert_eq!(
            parse_command_output(&format!("1 {KEY}\n2:{KEY}\n\n3={KEY}\n")).expect("versioned"),
            vec![(1, key.clone()), (2, key.clone()), (3, key)]
        );
    }

    #[test]
    fn refuses_what_is_not_keys_without_quoting_it() {
        for (output, expected) in [
            ("", "printed no key"),
            ("1 not-base64!\n", "line 1 of the key command's output is not base64"),
            (&format!("x {KEY}"), "does not start with a version number"),
            (&format!("1 {KEY}\n1 {KEY}"), "repeats version 1"),
        ] {
            let error = parse_command_output(output).expect_err(output).to_string();
            assert!(error.contains(expected), "{error}");
            assert!(!error.contains("not-base64"), "never quotes the output: {error}");
        }
    }

    #[test]
    fn runs_the_command_and_reports_failure_without_its_output() {
        let versions = from_command(&format!("printf '2 {KEY}\\n'")).expect("runs");
        assert_eq!(versions[0].0, 2);
        let error = from_command("echo secret-ish; exit 3").expect_err("fails").to_string();
        assert!(error.contains("failed") && !error.contains("secret-ish"), "{error}");
        // A background process keeping stdout open does not hang the start.
        let error = from_command_within(&format!("printf '1 {KEY}\\n'; sleep 4 &"), Duration::from_secs(1))
            .expect_err("the output never ends within the timeout")
            .to_string();
        assert!(error.contains("did not end"), "{error}");
    }
}
