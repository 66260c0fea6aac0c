//! The command-line spelling of the values several commands share: the report formats. The
//! models stay in `report/` free of clap; this is clap's view of them (the names and help lines
//! `--format` shows), the one place outside a command's own `args.rs` that speaks clap.

use clap::ValueEnum;
use clap::builder::PossibleValue;

use crate::report::{Format, ListFormat};

impl ValueEnum for Format {
    fn value_variants<'a>() -> &'a [Self] {
        &[Self::Table, Self::Json, Self::Junit, Self::Html]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(match self {
            Self::Table => PossibleValue::new("table").help("Aligned text for a terminal"),
            Self::Json => PossibleValue::new("json").help("JSON"),
            Self::Junit => PossibleValue::new("junit").help("JUnit XML"),
            Self::Html => PossibleValue::new("html")
                .help("One self-contained HTML page (no script, nothing fetched), to hand over"),
        })
    }
}

impl ValueEnum for ListFormat {
    fn value_variants<'a>() -> &'a [Self] {
        &[Self::Table, Self::Json]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(match self {
            Self::Table => PossibleValue::new("table").help("Aligned text"),
            Self::Json => PossibleValue::new("json").help("JSON array of endpoints"),
        })
    }
}
