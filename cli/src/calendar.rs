//! `flowwatch calendar <COUNTRY> <YEAR>`.

use anyhow::{Result, bail};
use flowwatch_core::calendar::holidays::{COUNTRIES, national_holidays};
use serde_json::json;

/// Prints `{"country", "year", "holidays": [dates], "names": {date: name}}`; `holidays` drops
/// straight into the country's entry of the configuration document.
pub fn run(country: &str, year: i32) -> Result<()> {
    if !(1583..=9999).contains(&year) {
        bail!("invalid year {year}: expected a Gregorian year 1583…9999");
    }
    let Some(list) = national_holidays(country, year) else {
        bail!(
            "no built-in holidays for country \"{country}\": known are {}",
            COUNTRIES.join(", ")
        );
    };
    let dates: Vec<String> = list.iter().map(|h| h.date.to_string()).collect();
    let names: serde_json::Map<String, serde_json::Value> = list
        .iter()
        .map(|h| (h.date.to_string(), json!(h.name)))
        .collect();
    let out = json!({ "country": country, "year": year, "holidays": dates, "names": names });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
