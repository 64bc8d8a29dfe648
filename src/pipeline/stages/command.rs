//! `command`: a user program as the array->bytes codec, so that neural or experimental codecs
//! plug in without recompiling photonqa.
//!
//! Per chunk, `encode` runs with `{input}` replaced by a `.npy` file holding the chunk and
//! `{output}` by the file it must write (the compressed bytes, any format); `decode` runs with
//! `{input}` replaced by those bytes and `{output}` by the `.npy` it must write, of the chunk's
//! shape and dtype. Both run through `sh -c` in photonqa's working directory (a shell, so that
//! wrappers can use pipes and redirections), with the placeholders replaced by single-quoted
//! paths (write `{input}`, not `'{input}'`). A scenario with this stage runs only with the
//! user's consent (`--allow-commands`, see `scenario::Scenario::commands`). A non-zero
//! exit, a missing or malformed output, or a run longer than `timeout` seconds (the program's
//! whole process group is then killed, see [`crate::data::shell`]) is an error of that working
//! point, with the command's last line of stderr; the sweep goes on.

use std::fs;
use std::path::Path;
use std::time::Duration;

use crate::data::npy::write_npy;
use crate::data::shell::{self, quoted};
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
            kind: ParamKind::Command,
            default: Default::Derived("required"),
            doc: "shell command writing {output} (bytes) from {input} (.npy of one chunk)",
        },
        ParamDef {
            name: "decode",
            kind: ParamKind::Command,
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
        let line = template
            .replace("{input}", &quoted(&input_path))
            .replace("{output}", &quoted(&output_path));
        shell::run(&line, template, self.timeout, None, dir.path()).map_err(fail)?;
        if !output_path.is_file() {
            return Err(fail(format!("`{template}` wrote no {{output}}")));
        }
        read(&output_path).map_err(fail)
    }
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
