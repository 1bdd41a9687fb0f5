//! The Go fixtures' own `runtime.Stack(buf, true)` dumps, parsed: the oracle the
//! goroutine tests (`goroutines.rs`, `cli_goroutines.rs`) hold latch's view against.

/// One goroutine of the fixture's own dump.
#[derive(Debug)]
pub struct Dumped {
    pub id: i64,
    /// The header's state without its additions (`, 2 minutes`).
    pub state: String,
    /// The functions of its frames, innermost first (Go leaves the runtime's out).
    pub functions: Vec<String>,
    /// Each frame's `FILE:LINE`.
    pub places: Vec<String>,
    /// `FUNC at FILE:LINE` of its `created by` (`in goroutine N` dropped).
    pub created_by: Option<String>,
    pub text: String,
}

pub fn parse_dump(dump: &str) -> Vec<Dumped> {
    dump.split("\n\n")
        .filter(|block| block.starts_with("goroutine "))
        .map(|block| {
            let mut lines = block.lines();
            let header = lines.next().unwrap();
            let id = header["goroutine ".len()..]
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            let open = header.find('[').unwrap();
            let close = header.rfind(']').unwrap();
            let state = header[open + 1..close]
                .split(", ")
                .next()
                .unwrap()
                .to_string();
            let mut functions = Vec::new();
            let mut places = Vec::new();
            let mut created_by = None;
            let rest: Vec<&str> = lines.collect();
            let mut i = 0;
            while i < rest.len() {
                let line = rest[i];
                // Each frame: `FUNC(ARGS)`, then `\tFILE:LINE +0xOFF`.
                let place = rest
                    .get(i + 1)
                    .and_then(|l| l.strip_prefix('\t'))
                    .map(|l| l.split(" +0x").next().unwrap().to_string());
                if let Some(creator) = line.strip_prefix("created by ") {
                    let creator = creator.split(" in goroutine ").next().unwrap();
                    created_by = Some(format!("{creator} at {}", place.unwrap_or_default()));
                    i += 2;
                } else if line.starts_with('\t') || line.starts_with("...") {
                    i += 1;
                } else {
                    let name = &line[..line.rfind('(').unwrap_or(line.len())];
                    functions.push(name.to_string());
                    places.push(place.unwrap_or_default());
                    i += 2;
                }
            }
            Dumped {
                id,
                state,
                functions,
                places,
                created_by,
                text: block.to_string(),
            }
        })
        .collect()
}
