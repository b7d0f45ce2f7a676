//! Stage two for one `[[journal]]` table: its keys, its listeners and its
//! timestamp spec checked and turned into the engine's types, every error
//! naming the file, line and key.

use super::*;

pub(super) fn journal(
    ctx: &Ctx<'_>,
    dir: &Path,
    j: &RawJournal,
) -> Result<JournalConfig, ConfigError> {
    let name = j.name.get_ref().clone();
    if !name_ok(&name) {
        return ctx.at(
            j.name.span(),
            format!("journal name {name:?}: use 1 to 64 letters, digits, '-', '_' or '.'"),
        );
    }
    let p = j.path.get_ref();
    if p.is_empty() || p.ends_with('/') {
        return ctx.at(
            j.path.span(),
            format!("journal {name:?}: path {p:?} must name a file"),
        );
    }
    let path = dir.join(p);
    let format_name = j
        .format
        .as_ref()
        .map(|s| s.get_ref().as_str())
        .unwrap_or("p4");
    let format = match (format_name, &j.record_start) {
        ("p4", None) => Format::P4,
        ("p4", Some(rs)) => {
            return ctx.at(
                rs.span(),
                format!("journal {name:?}: record_start only applies to format = \"lines\""),
            )
        }
        ("lines", rs) => {
            let record_start = match rs {
                None => None,
                Some(s) => match regex::bytes::Regex::new(s.get_ref()) {
                    Ok(r) => Some(r),
                    Err(e) => {
                        return ctx.at(
                            s.span(),
                            format!("journal {name:?}: record_start is not a valid regex: {e}"),
                        )
                    }
                },
            };
            Format::Lines { record_start }
        }
        (other, _) => {
            let span = j.format.as_ref().map(|s| s.span()).unwrap_or(0..0);
            return ctx.at(
                span,
                format!("journal {name:?}: format {other:?} is unknown; use \"p4\" or \"lines\""),
            );
        }
    };
    let quiet_after = duration(ctx, &j.quiet_after, "quiet_after", Duration::from_secs(2))?;
    let reconcile_every = duration(
        ctx,
        &j.reconcile_every,
        "reconcile_every",
        Duration::from_secs(1),
    )?;
    let scheme = match &j.rotated {
        None => Scheme::default_for(&format, &path),
        Some(list) => match Scheme::from_patterns(&path, list.get_ref()) {
            Ok(s) => s,
            Err(e) => return ctx.at(list.span(), format!("journal {name:?}: rotated: {e}")),
        },
    };
    let start = match &j.start {
        None => Start::Beginning,
        Some(v) => match v.get_ref() {
            toml::Value::String(s) if s == "beginning" => Start::Beginning,
            toml::Value::String(s) if s == "end" => Start::End,
            toml::Value::Integer(n) if *n >= 0 => Start::Journal(*n as u64),
            other => {
                return ctx.at(v.span(), format!("journal {name:?}: start = {other}: use \"beginning\", \"end\" or a journal number (start = 12)"))
            }
        },
    };
    let on_gap = match j.on_gap.as_ref().map(|s| (s.get_ref().as_str(), s.span())) {
        None | Some(("stop", _)) => OnGap::Stop,
        Some(("report", _)) => OnGap::Report,
        Some((other, span)) => {
            return ctx.at(
                span,
                format!("journal {name:?}: on_gap {other:?}: use \"stop\" or \"report\""),
            )
        }
    };
    let batch_bytes = match &j.batch_bytes {
        None => 1 << 20,
        Some(b) if *b.get_ref() >= 4096 && *b.get_ref() <= 1 << 30 => *b.get_ref() as usize,
        Some(b) => {
            return ctx.at(
                b.span(),
                format!(
                    "journal {name:?}: batch_bytes {} must be between 4096 and 1 GiB",
                    b.get_ref()
                ),
            )
        }
    };
    let late_writes = match &j.late_writes {
        None => DEFAULT_LATE_WRITES,
        Some(s) => match humantime::parse_duration(s.get_ref()) {
            Ok(d) => d,
            Err(e) => {
                return ctx.at(s.span(), format!("journal {name:?}: late_writes: {:?} is not a duration ({e}); write e.g. \"2s\", \"30s\", or \"0s\" to leave a renamed file as soon as the writer has moved on", s.get_ref()))
            }
        },
    };
    let mut listeners: Vec<ListenerConfig> = Vec::new();
    for l in &j.listener {
        let lc = listener(ctx, dir, &name, l)?;
        if listeners.iter().any(|o| o.name == lc.name) {
            return ctx.at(
                l.name.span(),
                format!(
                    "journal {name:?}: listener name {:?} is used twice",
                    lc.name
                ),
            );
        }
        listeners.push(lc);
    }
    if listeners.is_empty() {
        return ctx.at(
            j.name.span(),
            format!(
                "journal {name:?} has no [[journal.listener]]: nothing would receive its entries"
            ),
        );
    }
    Ok(JournalConfig {
        name,
        path,
        format,
        quiet_after,
        reconcile_every,
        reconcile_explicit: j.reconcile_every.is_some(),
        scheme,
        start,
        on_gap,
        batch_bytes,
        late_writes,
        // Shared with each listener's worker (see `Config::journals`).
        listeners: shared(listeners),
    })
}

/// `[journal.timestamp]`: a preset or a regex and a format, and a zone.
pub(super) fn timestamp(
    ctx: &Ctx<'_>,
    j: &JournalConfig,
    t: &toml::Spanned<RawTimestamp>,
) -> Result<TimestampSpec, ConfigError> {
    let name = &j.name;
    if matches!(j.format, Format::P4) {
        return ctx.at(t.span(), format!("journal {name:?}: timestamp only applies to format = \"lines\"; p4 entries take their time from the @ex@ marker of their transaction"));
    }
    let r = t.get_ref();
    let preset = match &r.preset {
        None => None,
        Some(p) => match Preset::from_name(p.get_ref()) {
            Some(p) => Some(p),
            None => {
                return ctx.at(
                    p.span(),
                    format!(
                        "journal {name:?}: timestamp.preset {:?} is unknown; use {}",
                        p.get_ref(),
                        Preset::NAMES
                    ),
                )
            }
        },
    };
    fn s(v: &Option<toml::Spanned<String>>) -> Option<&str> {
        v.as_ref().map(|v| v.get_ref().as_str())
    }
    TimestampSpec::new(preset, s(&r.regex), s(&r.format), s(&r.zone)).or_else(|e| {
        let key = match e.key {
            "zone" => &r.zone,
            "regex" => &r.regex,
            "format" => &r.format,
            _ => &r.preset,
        };
        let span = key.as_ref().map_or(t.span(), |k| k.span());
        ctx.at(
            span,
            format!("journal {name:?}: timestamp.{}: {}", e.key, e.message),
        )
    })
}

fn listener(
    ctx: &Ctx<'_>,
    dir: &Path,
    journal: &str,
    l: &RawListener,
) -> Result<ListenerConfig, ConfigError> {
    let name = l.name.get_ref().clone();
    if !name_ok(&name) {
        return ctx.at(l.name.span(), format!("journal {journal:?}: listener name {name:?}: use 1 to 64 letters, digits, '-', '_' or '.'"));
    }
    let p = l.plugin.get_ref();
    let plugin = if p.contains('/') || p.ends_with(".so") {
        PluginRef::Path(dir.join(p))
    } else if BUILTIN_PLUGINS.contains(&p.as_str()) {
        PluginRef::Builtin(p.clone())
    } else {
        return ctx.at(
            l.plugin.span(),
            format!("listener {name:?}: plugin {p:?} is neither a built-in ({}) nor a path to a .so file", BUILTIN_PLUGINS.join(", ")),
        );
    };
    let on_failure = match l
        .on_failure
        .as_ref()
        .map(|s| (s.get_ref().as_str(), s.span()))
    {
        None | Some(("stop", _)) => OnFailure::Stop,
        Some(("disable", _)) => OnFailure::Disable,
        Some((other, span)) => {
            return ctx.at(
                span,
                format!("listener {name:?}: on_failure {other:?}: use \"stop\" or \"disable\""),
            )
        }
    };
    let retry_max = duration(ctx, &l.retry_max, "retry_max", Duration::from_secs(60))?;
    let (config_toml, key_lines) = match &l.config {
        None => (String::new(), Vec::new()),
        Some(t) => {
            let table: toml::Table = t
                .iter()
                .map(|(k, v)| (k.get_ref().clone(), v.clone()))
                .collect();
            let lines: BTreeMap<String, usize> = t
                .keys()
                .map(|k| (k.get_ref().clone(), ctx.line(k.span().start)))
                .collect();
            let lines = lines.into_iter().collect();
            (toml::to_string(&table).unwrap_or_default(), lines)
        }
    };
    Ok(ListenerConfig {
        name,
        plugin,
        on_failure,
        retry_max,
        config_toml,
        line: table_line(ctx, ctx.line(l.name.span().start)),
        key_lines,
    })
}
