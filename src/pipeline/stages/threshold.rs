//! `threshold`: sets values at or below a threshold to a fill value, or binarises. The
//! threshold is fixed or found by Otsu's method on the stage's whole input.

use serde_json::json;

use crate::data::{DType, Element, FromNdArray, IntoNdArray, NdArray};
use crate::pipeline::params::{ANY_FLOAT, Default};
use crate::pipeline::{
    ArrayToArray, CodecError, InputStats, ParamDef, ParamKind, Stage, StageConfig, StageDef,
    StageInput, StageKind,
};
use crate::stats::otsu;
use crate::{with_array, with_dtype};

/// Registry entry.
pub static DEF: StageDef = StageDef {
    id: "threshold",
    aliases: &[],
    kind: StageKind::ArrayToArray,
    summary: "values <= threshold become `fill` (zero-below) or the array becomes a 0/1 uint8 mask (binarise); decode is the identity (binarise: 0/1 in the input dtype)",
    lossless: false,
    params: &[
        ParamDef {
            name: "method",
            kind: ParamKind::Choice(&["otsu", "value"]),
            default: Default::Str("otsu"),
            doc: "otsu: Otsu's threshold of the whole input, as scikit-image threshold_otsu; value: the given `value`",
        },
        ParamDef {
            name: "value",
            kind: ANY_FLOAT,
            default: Default::Derived("required when method = \"value\""),
            doc: "the threshold for method = \"value\"",
        },
        ParamDef {
            name: "mode",
            kind: ParamKind::Choice(&["zero-below", "binarise"]),
            default: Default::Str("zero-below"),
            doc: "zero-below: values <= threshold become `fill`; binarise: 1 where value > threshold, else 0",
        },
        ParamDef {
            name: "fill",
            kind: ANY_FLOAT,
            default: Default::Float(0.0),
            doc: "replacement for values <= threshold in zero-below mode",
        },
    ],
    create,
};

fn create(config: &StageConfig, input: StageInput) -> Result<Stage, String> {
    let threshold = match (config.str("method"), config.opt_float("value")) {
        ("value", Some(v)) => Some(v),
        ("value", None) => return Err("method = \"value\" needs a `value`".into()),
        (_, Some(_)) => return Err("`value` only applies to method = \"value\"".into()),
        (_, None) => None,
    };
    let binarise = config.str("mode") == "binarise";
    let output = if binarise { DType::Uint8 } else { input.dtype };
    Ok(Stage::ArrayToArray(
        Box::new(Threshold {
            threshold,
            binarise,
            fill: config.float("fill"),
            input: input.dtype,
        }),
        output,
    ))
}

struct Threshold {
    threshold: Option<f64>,
    binarise: bool,
    fill: f64,
    input: DType,
}

impl Threshold {
    fn value(&self) -> Result<f64, CodecError> {
        self.threshold
            .ok_or_else(|| CodecError::new(DEF.id, "Otsu threshold used before fitting"))
    }
}

impl ArrayToArray for Threshold {
    fn needs_fit(&self) -> bool {
        self.threshold.is_none()
    }

    fn fit(&mut self, stats: &mut dyn InputStats) -> Result<(), String> {
        self.threshold = Some(otsu::threshold(&stats.histogram()?));
        Ok(())
    }

    fn fitted(&self) -> serde_json::Value {
        json!({ "threshold": self.threshold })
    }

    fn encode(&self, input: NdArray) -> Result<NdArray, CodecError> {
        let t = self.value()?;
        Ok(with_array!(input, a => {
            if self.binarise {
                a.mapv(|v| u8::from(v.to_f64() > t)).into_nd()
            } else {
                let fill = Element::from_f64(self.fill);
                let mut a = a;
                a.mapv_inplace(|v| if v.to_f64() > t { v } else { fill });
                a.into_nd()
            }
        }))
    }

    fn decode(&self, encoded: NdArray, _shape: &[usize]) -> Result<NdArray, CodecError> {
        if !self.binarise {
            return Ok(encoded);
        }
        let mask = u8::from_nd(encoded)
            .ok_or_else(|| CodecError::new(DEF.id, "binarised data is not uint8"))?;
        Ok(with_dtype!(self.input, T => mask.mapv(|v| T::from_f64(v as f64)).into_nd()))
    }
}
