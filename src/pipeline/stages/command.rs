//! `command`: a user program as the array->bytes codec, so that neural or experimental codecs
//! plug in without recompiling photonqa.
//!
//! Per chunk, `encode` runs with `{input}` replaced by a `.npy` file holding the chunk and
//! `{output}` by the file it must write (the compressed bytes, any format); `decode` runs with
//! `{input}` replaced by those bytes and `{output}` by the `.npy` it must write, of the chunk's
//! shape and dtype. Both run through `sh -c` in photonqa's working directory. A non-zero exit,
//! a missing or malformed output, or a run longer than `timeout` seconds (the program is then
//! killed) is an error of that working point, with the command's last line of stderr; the
//! sweep goes on.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::data::npy::write_npy;
use crate::data::source::RawSource;
use crate::data::{DType, NdArray, VolumeSource};
use crate::pipeline::params::Default;
use crate::pipeline::{
    ArrayToBytes, CodecError, ParamDef, ParamKind, Stage, StageConfig, StageDef, StageInput,
    StageKind,
};

/// Registry entry.
pub static DEF: StageDef = StageDef {
    id: "command",
    aliases: &[],
    kind: StageKind::ArrayToBytes,
    summary: "a user program as codec: encode .npy -> bytes, decode bytes -> .npy (see `{input}`, `{output}`)",
    lossless: false,
    params: &[
        ParamDef {
            name: "encode",
            kind: ParamKind::Text,
            default: Default::Derived("required"),
            doc: "shell command writing {output} (bytes) from {input} (.npy of one chunk)",
        },
        ParamDef {
            name: "decode",
            kind: ParamKind::Text,
            default: Default::Derived("required"),
            doc: "shell command writing {output} (.npy, the chunk's shape and dtype) from {input} (bytes)",
        },
        ParamDef {
            name: "timeout",
            kind: ParamKind::Float {
                min: 0.001,
                max: 86_400.0,
            },
            default: Default::Float(60.0),
            doc: "seconds one call may take before it is killed",
        },
    ],
    create,
};

/// How often a running command is polled for its exit.
const POLL: Duration = Duration::from_millis(5);

fn create(config: &StageConfig, input: StageInput) -> Result<Stage, String> {
    let command = |name: &str| -> Result<String, String> {
        match config.params.iter().find(|(n, _)| *n == name) {
            None => Err(format!("{name} is required")),
            Some(_) => {
                let text = config.str(name).to_string();
                for placeholder in ["{input}", "{output}"] {
                    if !text.contains(placeholder) {
                        return Err(format!("{name} must use {placeholder}"));
                    }
                }
                Ok(text)
            }
        }
    };
    Ok(Stage::ArrayToBytes(Box::new(External {
        encode: command("encode")?,
        decode: command("decode")?,
        timeout: Duration::from_secs_f64(config.float("timeout")),
        dtype: input.dtype,
    })))
}

struct External {
    encode: String,
    decode: String,
    timeout: Duration,
    dtype: DType,
}

impl External {
    /// Runs `template` in a fresh temporary directory: `write` makes its input file `input`,
    /// `read` turns its output file `output` into the result.
    fn run<T>(
        &self,
        (what, template): (&str, &str),
        (input, write): (&str, impl FnOnce(&Path) -> Result<(), String>),
        (output, read): (&str, impl FnOnce(&Path) -> Result<T, String>),
    ) -> Result<T, CodecError> {
        let fail = |m: String| CodecError::new(DEF.id, format!("{what}: {m}"));
        let dir = tempfile::tempdir().map_err(|e| fail(format!("temporary directory: {e}")))?;
        let (input_path, output_path) = (dir.path().join(input), dir.path().join(output));
        write(&input_path).map_err(fail)?;
        let stderr_path = dir.path().join("stderr");
        let line = template
            .replace("{input}", &quoted(&input_path))
            .replace("{output}", &quoted(&output_path));
        let mut child = Command::new("sh")
            .args(["-c", &line])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&stderr_path).map_err(|e| fail(e.to_string()))?)
            .spawn()
            .map_err(|e| fail(format!("cannot start `{template}`: {e}")))?;
        let start = Instant::now();
        let status = loop {
            match child.try_wait().map_err(|e| fail(e.to_string()))? {
                Some(status) => break status,
                None if start.elapsed() > self.timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(fail(format!(
                        "`{template}` timed out after {} s and was killed",
                        self.timeout.as_secs_f64()
                    )));
                }
                None => std::thread::sleep(POLL),
            }
        };
        if !status.success() {
            let stderr = fs::read_to_string(&stderr_path).unwrap_or_default();
            let last = stderr
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            return Err(fail(format!("`{template}` failed ({status}): {last}")));
        }
        if !output_path.is_file() {
            return Err(fail(format!("`{template}` wrote no {{output}}")));
        }
        read(&output_path).map_err(fail)
    }
}

/// `path` in single quotes for `sh`.
fn quoted(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

impl ArrayToBytes for External {
    fn encode(&self, input: &NdArray) -> Result<Vec<u8>, CodecError> {
        self.run(
            ("encode", &self.encode),
            ("chunk.npy", |path: &Path| {
                write_npy(path, input).map_err(|e| e.to_string())
            }),
            ("encoded.bin", |path: &Path| {
                fs::read(path).map_err(|e| e.to_string())
            }),
        )
    }

    fn decode(&self, bytes: &[u8], shape: &[usize]) -> Result<NdArray, CodecError> {
        let read = |path: &Path| -> Result<NdArray, String> {
            let source =
                RawSource::open_npy(path).map_err(|e| format!("not a .npy: {}", e.message))?;
            if source.shape() != shape || source.dtype() != self.dtype {
                return Err(format!(
                    "wrote {} {:?}, expected {} {shape:?}",
                    source.dtype(),
                    source.shape(),
                    self.dtype
                ));
            }
            source.read_slab(0..shape[0]).map_err(|e| e.to_string())
        };
        self.run(
            ("decode", &self.decode),
            ("encoded.bin", |path: &Path| {
                fs::write(path, bytes).map_err(|e| e.to_string())
            }),
            ("decoded.npy", read),
        )
    }
}
