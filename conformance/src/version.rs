//! The protocol versions the runner checks.

use std::fmt;
use std::str::FromStr;

use mqttkit_codec::ProtocolVersion;
use serde::{Deserialize, Serialize};

/// A protocol version a scenario can run under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Version {
    /// MQTT 3.1.1 (protocol level 4).
    #[serde(rename = "3.1.1")]
    V3_1_1,
    /// MQTT 5.0 (protocol level 5).
    #[serde(rename = "5.0")]
    V5,
}

impl Version {
    /// Both versions, oldest first.
    pub const ALL: [Self; 2] = [Self::V3_1_1, Self::V5];

    /// The codec's protocol version.
    pub const fn protocol(self) -> ProtocolVersion {
        match self {
            Self::V3_1_1 => ProtocolVersion::V3_1_1,
            Self::V5 => ProtocolVersion::V5,
        }
    }

    /// Whether packets carry properties and reason codes.
    pub const fn is_v5(self) -> bool {
        matches!(self, Self::V5)
    }

    /// The label used in files and reports.
    pub const fn label(self) -> &'static str {
        match self {
            Self::V3_1_1 => "3.1.1",
            Self::V5 => "5.0",
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

impl FromStr for Version {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "3.1.1" | "3" | "4" | "v3.1.1" => Ok(Self::V3_1_1),
            "5" | "5.0" | "v5" | "v5.0" => Ok(Self::V5),
            other => Err(format!("unknown protocol version `{other}` (expected 3.1.1 or 5.0)")),
        }
    }
}
