//! Compressed debug sections, inflated once and kept on disk by build-id, so that later
//! sessions map them instead of inflating them again.
//!
//! Inflating libc's debug file (libc6-dbg: 3.8 MB of zlib, 8.6 MB inflated) costs about
//! 120 M instructions, most of a first stack trace's work, and its 8.6 MB stay on the
//! heap. A mapped cache file costs neither: only the pages lookups touch become
//! resident. The first session still pays the inflate, and writes the cache off the
//! lookup path.
//!
//! The cache lives in `$LATCH_CACHE_DIR`, else `$XDG_CACHE_HOME/latch`, else
//! `~/.cache/latch` (`LATCH_CACHE_DIR=` set empty turns it off), one file per section:
//! `<build-id>/<section>`. A file is used only if it is ours (owned by this user,
//! writable by nobody else), and its header names the same build-id, section and
//! sizes, and its length is exact; anything else is inflated again and rewritten. Files
//! are written whole to a temporary name, synced, then renamed, so a reader sees a
//! complete file or none. A cache that cannot be read or written changes nothing but
//! speed.

use std::borrow::Cow;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use object::{CompressionFormat, ObjectSection};

const MAGIC: &[u8; 8] = b"latchsec";
/// Past this, the build-ids written longest ago are removed (libc's sections: 8.6 MB).
const MAX_BYTES: u64 = 1 << 30;
const VERSION: u32 = 1;
/// magic, version, build-id length, name length, compressed and inflated sizes.
const FIXED_HEADER: usize = 8 + 4 + 4 + 4 + 8 + 8;

/// What names a file's build in the cache: its GNU build-id, else Go's build ID. The Go
/// toolchain writes no GNU build-id but compresses its DWARF, so without the latter
/// every attach to a Go program inflated it again.
pub fn build_identity(file: &object::File<'static>) -> Option<Vec<u8>> {
    use object::Object;
    if let Some(id) = file.build_id().ok().flatten().filter(|id| !id.is_empty()) {
        return Some(id.to_vec());
    }
    let note = file.section_by_name(".note.go.buildid")?;
    let go = go_build_id(
        object::ObjectSection::data(&note).ok()?,
        file.is_little_endian(),
    )?;
    Some([b"go:".as_slice(), go].concat())
}

/// The descriptor of the ELF note `Go`/4 that `.note.go.buildid` holds: namesz, descsz
/// and type words, the name padded to 4 bytes, then the ID (text, a few slash-separated
/// hashes of the build's inputs and output).
fn go_build_id(note: &[u8], little_endian: bool) -> Option<&[u8]> {
    let word = |at: usize| -> Option<usize> {
        let bytes: [u8; 4] = note.get(at..at + 4)?.try_into().ok()?;
        let value = if little_endian {
            u32::from_le_bytes(bytes)
        } else {
            u32::from_be_bytes(bytes)
        };
        usize::try_from(value).ok()
    };
    const GO_BUILD_ID_NOTE: usize = 4;
    let (name_size, id_size) = (word(0)?, word(4)?);
    if word(8)? != GO_BUILD_ID_NOTE || note.get(12..12 + name_size)? != b"Go\0\0" {
        return None;
    }
    let id_at = 12 + name_size.next_multiple_of(4);
    note.get(id_at..id_at.checked_add(id_size)?)
        .filter(|id| !id.is_empty())
}

/// A section's bytes, inflated when compressed: from the cache when it holds them, else
/// inflated here (and then written to the cache in the background).
pub fn section_data(
    file: &object::File<'static>,
    build_id: Option<&[u8]>,
    name: &str,
) -> Option<&'static [u8]> {
    let section = object::Object::section_by_name(file, name)?;
    let key = section_key(&section, build_id, name);
    if let Some(data) = key.as_ref().and_then(Key::read) {
        return Some(data);
    }
    let data = match section.uncompressed_data().ok()? {
        Cow::Borrowed(data) => return Some(data),
        Cow::Owned(data) => {
            if let Ok(compressed) = section.compressed_data() {
                super::module::release(compressed.data);
            }
            super::module::keep(data)
        }
    };
    if let Some(key) = key {
        write_in_background(key, data);
    }
    Some(data)
}

/// Where a compressed section of a file with a build identity is cached; `None` for
/// sections stored plain (nothing to save) and when the cache is off.
fn section_key(
    section: &object::Section<'static, '_>,
    build_id: Option<&[u8]>,
    name: &str,
) -> Option<Key> {
    let compressed = section.compressed_file_range().ok()?;
    match (compressed.format, build_id, directory()) {
        (CompressionFormat::None, _, _) | (_, None, _) | (_, _, None) => None,
        (_, Some(id), Some(dir)) if !id.is_empty() => Some(Key {
            path: dir.join(hex(id)).join(name.trim_start_matches('.')),
            build_id: id.to_vec(),
            name: name.to_string(),
            compressed_size: compressed.compressed_size,
            size: compressed.uncompressed_size,
        }),
        _ => None,
    }
}

fn write_in_background(key: Key, data: impl AsRef<[u8]> + Send + 'static) {
    let writing = Writing::start();
    let _ = std::thread::Builder::new()
        .name("latch-cache".into())
        .spawn(move || {
            let _background = crate::priority::work_in_background();
            let _writing = writing;
            match key.write(data.as_ref()) {
                Ok(()) => key.trim(MAX_BYTES),
                Err(err) => {
                    tracing::debug!("symbol cache: not written {}: {err}", key.path.display())
                }
            }
        });
}

/// Where `.debug_info`'s code units lie (start and end offsets, in order), kept next to
/// its inflated bytes when those are cached: with the sections cached, scanning the
/// 4126 unit headers of libc's took 1.1 ms, half of a first stack trace. `scan` finds
/// them when the cache does not hold them (they are then written); spans that do not
/// fit a `.debug_info` of `info_len` bytes are not used.
pub fn unit_spans(
    file: &object::File<'static>,
    build_id: Option<&[u8]>,
    info_len: usize,
    scan: impl FnOnce() -> Vec<(usize, usize)>,
) -> Vec<(usize, usize)> {
    let key = object::Object::section_by_name(file, ".debug_info").and_then(|section| {
        let mut key = section_key(&section, build_id, ".debug_info")?;
        key.path.set_file_name("debug_info.units");
        key.name.push_str(".units");
        Some(key)
    });
    match key {
        Some(key) => cached_unit_spans(key, info_len, scan),
        None => scan(),
    }
}

fn cached_unit_spans(
    key: Key,
    info_len: usize,
    scan: impl FnOnce() -> Vec<(usize, usize)>,
) -> Vec<(usize, usize)> {
    let cached = key
        .read_with(|len| len % 16 == 0)
        .map(|bytes| {
            bytes
                .chunks_exact(16)
                .map(|pair| {
                    let word = |at: usize| {
                        let bytes: [u8; 8] = pair[at..at + 8].try_into().expect("8 bytes");
                        usize::try_from(u64::from_le_bytes(bytes)).unwrap_or(usize::MAX)
                    };
                    (word(0), word(8))
                })
                .collect::<Vec<_>>()
        })
        .filter(|spans| spans_fit(spans, info_len));
    if let Some(spans) = cached {
        return spans;
    }
    let spans = scan();
    let bytes: Vec<u8> = spans
        .iter()
        .flat_map(|&(start, end)| [start as u64, end as u64])
        .flat_map(u64::to_le_bytes)
        .collect();
    write_in_background(key, bytes);
    spans
}

/// Non-empty, in order, not overlapping, within the section.
fn spans_fit(spans: &[(usize, usize)], info_len: usize) -> bool {
    let mut at = 0;
    spans.iter().all(|&(start, end)| {
        let fits = at <= start && start < end && end <= info_len;
        at = end;
        fits
    })
}

/// How many cache files are being written, and a signal when one is done.
static WRITING: (Mutex<usize>, Condvar) = (Mutex::new(0), Condvar::new());

/// One cache file being written, counted in `WRITING` until dropped (also when its
/// thread could not be spawned, or panicked).
struct Writing;

impl Writing {
    fn start() -> Writing {
        *WRITING.0.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        Writing
    }
}

impl Drop for Writing {
    fn drop(&mut self) {
        *WRITING.0.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        WRITING.1.notify_all();
    }
}

/// Lets the cache files being written finish, for at most `within`; latch calls it as
/// it exits, once the target is detached. Without it a short session lost the file
/// that matters most: `latch attach` exits within milliseconds of inflating libc's
/// 5.8 MB `.debug_info`, before that file was written, so every later run inflated it
/// again. False when some write was still going on at the deadline.
pub fn finish_writing(within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut pending = WRITING.0.lock().unwrap_or_else(|e| e.into_inner());
    while *pending > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            tracing::debug!("symbol cache: exiting with {} file(s) unwritten", *pending);
            return false;
        }
        pending = WRITING
            .1
            .wait_timeout(pending, left)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
    true
}

fn directory() -> Option<PathBuf> {
    match std::env::var_os("LATCH_CACHE_DIR") {
        Some(dir) if dir.is_empty() => None,
        Some(dir) => Some(PathBuf::from(dir)),
        None => std::env::var_os("XDG_CACHE_HOME")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| Some(PathBuf::from(std::env::var_os("HOME")?).join(".cache")))
            .map(|d| d.join("latch")),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a cache file must say about itself to be used.
#[derive(Clone)]
struct Key {
    path: PathBuf,
    build_id: Vec<u8>,
    name: String,
    compressed_size: u64,
    size: u64,
}

impl Key {
    fn header(&self) -> Vec<u8> {
        let mut header = Vec::with_capacity(FIXED_HEADER + 64);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&VERSION.to_le_bytes());
        header.extend_from_slice(&(self.build_id.len() as u32).to_le_bytes());
        header.extend_from_slice(&(self.name.len() as u32).to_le_bytes());
        header.extend_from_slice(&self.compressed_size.to_le_bytes());
        header.extend_from_slice(&self.size.to_le_bytes());
        header.extend_from_slice(&self.build_id);
        header.extend_from_slice(self.name.as_bytes());
        // The data starts 8-aligned, as it would in a heap buffer.
        header.resize(header.len().next_multiple_of(8), 0);
        header
    }

    /// The cached bytes, if the file is ours and describes exactly this section.
    fn read(&self) -> Option<&'static [u8]> {
        self.read_with(|len| len == self.size)
    }

    /// The cached bytes, if the file is ours, its header is this key's, and `fits` takes
    /// the length of what follows the header.
    fn read_with(&self, fits: impl Fn(u64) -> bool) -> Option<&'static [u8]> {
        let file = std::fs::File::open(&self.path).ok()?;
        let meta = file.metadata().ok()?;
        let header = self.header();
        let trusted = meta.is_file()
            && meta.uid() == nix::unistd::geteuid().as_raw()
            && meta.mode() & 0o022 == 0
            && meta
                .len()
                .checked_sub(header.len() as u64)
                .is_some_and(fits);
        if !trusted {
            return None;
        }
        // SAFETY: read-only private mapping of a file only ever replaced by rename,
        // never rewritten in place (see the module docs).
        let map = unsafe { memmap2::Mmap::map(&file).ok()? };
        if map.get(..header.len())? != header.as_slice() {
            return None;
        }
        Some(&super::module::keep_mapping(map, file)[header.len()..])
    }

    fn write(&self, data: &[u8]) -> std::io::Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        remove_abandoned(dir);
        let temporary = dir.join(format!(
            ".{}.{}.tmp",
            self.name.trim_start_matches('.'),
            std::process::id()
        ));
        let result = (|| {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&temporary)?;
            file.write_all(&self.header())?;
            file.write_all(data)?;
            file.sync_all()?;
            std::fs::rename(&temporary, &self.path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&temporary);
        }
        result
    }
}

impl Key {
    /// Keeps the whole cache under `limit` bytes by removing the build-ids written
    /// longest ago, never the one just written.
    fn trim(&self, limit: u64) {
        let Some(ours) = self.path.parent() else {
            return;
        };
        let Some(Ok(entries)) = ours.parent().map(std::fs::read_dir) else {
            return;
        };
        let mut builds: Vec<(std::time::SystemTime, u64, PathBuf)> = entries
            .flatten()
            .filter(|entry| entry.path() != ours)
            .filter_map(|entry| {
                let written = entry.metadata().ok()?.modified().ok()?;
                let size = std::fs::read_dir(entry.path())
                    .ok()?
                    .flatten()
                    .filter_map(|file| Some(file.metadata().ok()?.len()))
                    .sum();
                Some((written, size, entry.path()))
            })
            .collect();
        let ours_size: u64 = std::fs::read_dir(ours)
            .map(|files| {
                files
                    .flatten()
                    .filter_map(|f| Some(f.metadata().ok()?.len()))
                    .sum()
            })
            .unwrap_or(0);
        let mut total = ours_size + builds.iter().map(|b| b.1).sum::<u64>();
        builds.sort();
        for (_, size, path) in builds {
            if total <= limit {
                break;
            }
            if std::fs::remove_dir_all(&path).is_ok() {
                total -= size;
            }
        }
    }
}

/// Temporary files of writers that are gone: a latch killed while writing, or one that
/// gave up waiting for a slow disk as it exited (see `finish_writing`), leaves them.
fn remove_abandoned(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(writer) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".tmp"))
            .and_then(|n| n.rsplit('.').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{writer}")).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(dir: &Path) -> Key {
        Key {
            path: dir.join("0123abcd").join("debug_info"),
            build_id: vec![0x01, 0x23, 0xab, 0xcd],
            name: ".debug_info".into(),
            compressed_size: 10,
            size: 5,
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("latch-cache-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn written_sections_are_read_back_only_when_they_match() {
        let dir = scratch("match");
        let written = key(&dir);
        assert!(written.read().is_none(), "nothing cached yet");
        written.write(b"hello").unwrap();
        assert_eq!(written.read(), Some(&b"hello"[..]));

        // Another build-id, size or section under the same path is not this section.
        let mut other = key(&dir);
        other.build_id[0] = 0xff;
        assert!(other.read().is_none());
        let mut other = key(&dir);
        other.compressed_size = 11;
        assert!(other.read().is_none());
        let mut other = key(&dir);
        other.name = ".debug_line".into();
        assert!(other.read().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn damaged_or_foreign_files_are_not_used() {
        use std::os::unix::fs::PermissionsExt;
        let dir = scratch("damaged");
        let cached = key(&dir);
        cached.write(b"hello").unwrap();
        // Cut short (as by a full disk): the length no longer matches.
        let bytes = std::fs::read(&cached.path).unwrap();
        std::fs::write(&cached.path, &bytes[..bytes.len() - 1]).unwrap();
        assert!(cached.read().is_none());
        // A damaged header.
        let mut bad = bytes.clone();
        bad[0] ^= 0xff;
        std::fs::write(&cached.path, &bad).unwrap();
        assert!(cached.read().is_none());
        // Writable by others: anyone could have put anything there.
        std::fs::write(&cached.path, &bytes).unwrap();
        assert!(cached.read().is_some());
        std::fs::set_permissions(&cached.path, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(cached.read().is_none());
        // Rewriting replaces it whole, with our permissions.
        cached.write(b"hello").unwrap();
        assert_eq!(cached.read(), Some(&b"hello"[..]));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_oldest_build_ids_go_first_when_over_the_limit() {
        let dir = scratch("trim");
        let mut keys = Vec::new();
        for (i, id) in ["aa", "bb", "cc"].iter().enumerate() {
            let mut key = key(&dir);
            key.path = dir.join(id).join("debug_info");
            key.write(b"hello").unwrap();
            // Distinct, ordered modification times.
            let when =
                std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1 + i as u64);
            std::fs::File::open(dir.join(id))
                .unwrap()
                .set_modified(when)
                .unwrap();
            keys.push(key);
        }
        let one = std::fs::metadata(&keys[0].path).unwrap().len();
        // Room for two: the oldest (aa) goes; the one just written (cc) always stays.
        keys[2].trim(2 * one);
        assert!(keys[0].read().is_none());
        assert!(keys[1].read().is_some());
        assert!(keys[2].read().is_some());
        keys[2].trim(0);
        assert!(keys[1].read().is_none());
        assert!(keys[2].read().is_some());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unwritable_cache_only_costs_speed() {
        let dir = scratch("unwritable");
        std::fs::write(&dir, b"a file where the directory should be").unwrap();
        let cached = key(&dir);
        assert!(cached.write(b"hello").is_err());
        assert!(cached.read().is_none());
        std::fs::remove_file(&dir).unwrap();
    }

    /// Exiting waits for a write in progress, but not past its deadline.
    #[test]
    fn finishing_waits_for_writes_until_the_deadline() {
        let held = Writing::start();
        let (done, finish) = std::sync::mpsc::channel::<()>();
        let writer = std::thread::spawn(move || {
            let _ = finish.recv();
            drop(held);
        });
        assert!(
            !finish_writing(Duration::from_millis(20)),
            "a write still in progress at the deadline"
        );
        done.send(()).unwrap();
        assert!(finish_writing(Duration::from_secs(10)));
        writer.join().unwrap();
    }

    /// Go's build ID note, as the Go linker writes it: the ID is read in either byte
    /// order; another owner, type or a short note gives none.
    #[test]
    fn go_build_id_is_read_from_its_note() {
        let note = |name: &[u8], kind: u32, id: &[u8], little: bool| {
            let word = |v: u32| {
                if little {
                    v.to_le_bytes()
                } else {
                    v.to_be_bytes()
                }
            };
            let mut bytes = Vec::new();
            bytes.extend_from_slice(&word(name.len() as u32));
            bytes.extend_from_slice(&word(id.len() as u32));
            bytes.extend_from_slice(&word(kind));
            bytes.extend_from_slice(name);
            bytes.resize(bytes.len().next_multiple_of(4), 0);
            bytes.extend_from_slice(id);
            bytes
        };
        let id =
            b"f0l6P4ee0hTP8puWSJCi/hFvV9Q5vxtNTrMCY3JxZ/nkZd1yfUDNq-8lrsQ2rA/p8ka_pbuGc5AUI6p9p2_";
        let ours = note(b"Go\0\0", 4, id, true);
        assert_eq!(go_build_id(&ours, true), Some(&id[..]));
        let big = note(b"Go\0\0", 4, id, false);
        assert_eq!(go_build_id(&big, false), Some(&id[..]));
        assert_eq!(go_build_id(&note(b"GNU\0", 4, id, true), true), None);
        assert_eq!(go_build_id(&note(b"Go\0\0", 3, id, true), true), None);
        assert_eq!(go_build_id(&ours[..ours.len() - 1], true), None);
        assert_eq!(go_build_id(&[], true), None);
    }

    /// Unit spans are scanned once, then read back; spans that do not fit the section
    /// (another file's, or a damaged one) are scanned again.
    #[test]
    fn unit_spans_are_kept_and_checked() {
        let dir = scratch("units");
        let mut units = key(&dir);
        units.path.set_file_name("debug_info.units");
        let spans = vec![(0, 100), (100, 250), (300, 4000)];
        let scanned = cached_unit_spans(units.clone(), 4000, || spans.clone());
        assert_eq!(scanned, spans);
        assert!(finish_writing(Duration::from_secs(10)));
        let read = cached_unit_spans(units.clone(), 4000, || panic!("scanned again"));
        assert_eq!(read, spans);
        // A section shorter than the last span: these spans are not its own.
        let rescanned = cached_unit_spans(units, 3999, || vec![(0, 3999)]);
        assert_eq!(rescanned, vec![(0, 3999)]);
        assert!(spans_fit(&[], 0));
        assert!(!spans_fit(&[(0, 10), (5, 20)], 20), "overlapping");
        assert!(!spans_fit(&[(10, 10)], 20), "empty");
        assert!(finish_writing(Duration::from_secs(10)));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
