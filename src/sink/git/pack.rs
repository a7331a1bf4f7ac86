//! Many blobs into a repository as one pack file.
//!
//! libgit2 writes every new object as its own loose file (plus the
//! directories that fan them out). For a first commit of 10,000 policies,
//! creating those files is most of the time. A pack is one stream, one file:
//! blobs are hashed and compressed here (no delta search, which is what makes
//! libgit2's own pack builder slow for this), and the pack is written into the
//! object database with its index, which is built from what hashing and
//! compressing already found out.

use std::collections::HashSet;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use flate2::write::ZlibEncoder;
use flate2::Compression;
use git2::{Oid, Repository};

use rayon::prelude::*;

use crate::sink::git::error::GitError;

/// Below this many blobs, loose objects are as fast and simpler.
const PACK_THRESHOLD: usize = 64;

/// Writes each blob and returns its id, in order.
pub fn write_blobs(repo: &Repository, blobs: &[(String, &[u8])]) -> Result<Vec<Oid>, GitError> {
    if blobs.len() < PACK_THRESHOLD {
        return blobs
            .iter()
            .map(|(path, bytes)| {
                repo.blob(bytes)
                    .map_err(GitError::git(format!("write {path}")))
            })
            .collect();
    }
    const CONTEXT: &str = "write the new objects as a pack";
    // Hash and compress on every core; the entries keep their order.
    let entries: Vec<(Oid, Vec<u8>)> = blobs.par_iter().map(|(_, b)| entry(b)).collect();
    let ids: Vec<Oid> = entries.iter().map(|(id, _)| *id).collect();

    // Each object once (clusters can share a policy), with its offset and
    // checksum for the index.
    let mut seen = HashSet::with_capacity(entries.len());
    let mut objects = Vec::with_capacity(entries.len());
    let mut pack = Vec::with_capacity(entries.iter().map(|(_, e)| e.len()).sum::<usize>() + 32);
    pack.extend_from_slice(b"PACK");
    pack.extend_from_slice(&2u32.to_be_bytes());
    pack.extend_from_slice(&[0; 4]); // the count, once known
    for (id, e) in &entries {
        if seen.insert(*id) {
            let mut crc = flate2::Crc::new();
            crc.update(e);
            objects.push((*id, pack.len() as u64, crc.sum()));
            pack.extend_from_slice(e);
        }
    }
    drop(entries);
    pack[8..12].copy_from_slice(&(objects.len() as u32).to_be_bytes());
    let trailer = sha1_smol::Sha1::from(&pack).digest().bytes();
    pack.extend_from_slice(&trailer);

    let pack_dir = repo.commondir().join("objects").join("pack");
    if pack.len() < MAX_SMALL_OFFSET && pack_dir.is_dir() {
        // We know every object's id, offset and checksum already, so the
        // index is written here instead of by libgit2's indexer, which would
        // inflate and hash every object again.
        let index = index_v2(&mut objects, &trailer);
        write_pack_files(&pack_dir, &pack, &index, &trailer).map_err(GitError::io(CONTEXT))?;
        repo.odb()
            .and_then(|odb| odb.refresh())
            .map_err(GitError::git(CONTEXT))?;
    } else {
        let odb = repo.odb().map_err(GitError::git(CONTEXT))?;
        let mut writer = odb.packwriter().map_err(GitError::git(CONTEXT))?;
        writer.write_all(&pack).map_err(GitError::io(CONTEXT))?;
        writer.commit().map_err(GitError::git(CONTEXT))?;
    }
    Ok(ids)
}

/// Offsets from here on need the index's large-offset table, which
/// [`index_v2`] does not write; such packs go through libgit2's indexer.
const MAX_SMALL_OFFSET: usize = 1 << 31;

/// A version 2 pack index: fan-out table, sorted ids, checksums of the
/// packed entries, offsets, the pack's checksum, and its own.
fn index_v2(objects: &mut [(Oid, u64, u32)], pack_sum: &[u8; 20]) -> Vec<u8> {
    objects.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut idx = Vec::with_capacity(8 + 256 * 4 + objects.len() * 28 + 40);
    idx.extend_from_slice(b"\xfftOc");
    idx.extend_from_slice(&2u32.to_be_bytes());
    let mut fanout = [0u32; 256];
    for (id, _, _) in objects.iter() {
        fanout[usize::from(id.as_bytes()[0])] += 1;
    }
    let mut total = 0;
    for count in fanout {
        total += count;
        idx.extend_from_slice(&total.to_be_bytes());
    }
    for (id, _, _) in objects.iter() {
        idx.extend_from_slice(id.as_bytes());
    }
    for (_, _, crc) in objects.iter() {
        idx.extend_from_slice(&crc.to_be_bytes());
    }
    for (_, offset, _) in objects.iter() {
        let offset = u32::try_from(*offset).expect("checked against MAX_SMALL_OFFSET");
        idx.extend_from_slice(&offset.to_be_bytes());
    }
    idx.extend_from_slice(pack_sum);
    let own = sha1_smol::Sha1::from(&idx).digest().bytes();
    idx.extend_from_slice(&own);
    idx
}

/// Writes `pack-<checksum>.pack` and its `.idx` as git does: read-only,
/// each complete under a temporary name before it is renamed into place,
/// the index last, since readers find packs by their index.
fn write_pack_files(dir: &Path, pack: &[u8], index: &[u8], sum: &[u8; 20]) -> std::io::Result<()> {
    let name: String = sum.iter().map(|b| format!("{b:02x}")).collect();
    for (bytes, ext) in [(pack, "pack"), (index, "idx")] {
        let temp = dir.join(format!("tmp_{ext}_{}_{name}", std::process::id()));
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o444)
            .open(&temp)
            .and_then(|mut f| f.write_all(bytes))
            .and_then(|()| std::fs::rename(&temp, dir.join(format!("pack-{name}.{ext}"))));
        if written.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        written?;
    }
    Ok(())
}

/// The id git gives a blob with this content.
pub fn blob_id(content: &[u8]) -> Oid {
    let mut hasher = sha1_smol::Sha1::new();
    hasher.update(format!("blob {}\0", content.len()).as_bytes());
    hasher.update(content);
    Oid::from_bytes(&hasher.digest().bytes()).expect("20 bytes")
}

/// The ids of many blobs, in order, hashed on every core.
pub fn blob_ids(contents: &[&[u8]]) -> Vec<Oid> {
    contents
        .par_iter()
        .with_min_len(256)
        .map(|c| blob_id(c))
        .collect()
}

/// One blob's id and its pack entry: a type-and-size header, then the
/// zlib-compressed content.
fn entry(content: &[u8]) -> (Oid, Vec<u8>) {
    let id = blob_id(content);

    const BLOB: u8 = 3;
    let mut out = Vec::with_capacity(content.len() / 2 + 16);
    let mut size = content.len();
    let mut byte = (BLOB << 4) | (size & 0x0f) as u8;
    size >>= 4;
    while size > 0 {
        out.push(byte | 0x80);
        byte = (size & 0x7f) as u8;
        size >>= 7;
    }
    out.push(byte);
    let mut z = ZlibEncoder::new(out, Compression::fast());
    z.write_all(content).expect("writing to memory");
    (id, z.finish().expect("writing to memory"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_blobs_read_back_with_the_ids_git_gives_them() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = Repository::init(tmp.path()).unwrap();
        // Some contents twice, as when two clusters share a policy.
        let contents: Vec<Vec<u8>> = (0..200)
            .map(|i| {
                format!("policy {}\n", i % 150)
                    .repeat(i % 150 % 40 + 1)
                    .into_bytes()
            })
            .collect();
        let blobs: Vec<(String, &[u8])> = contents
            .iter()
            .enumerate()
            .map(|(i, c)| (format!("f{i}"), c.as_slice()))
            .collect();
        let ids = write_blobs(&repo, &blobs).unwrap();
        for (id, content) in ids.iter().zip(&contents) {
            assert_eq!(
                *id,
                Oid::hash_object(git2::ObjectType::Blob, content).unwrap()
            );
            assert_eq!(repo.find_blob(*id).unwrap().content(), content.as_slice());
        }
        let pack_dir = tmp.path().join(".git/objects/pack");
        let mut files: Vec<_> = std::fs::read_dir(&pack_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        files.sort();
        assert_eq!(
            files.len(),
            2,
            "one .pack and its .idx, nothing else: {files:?}"
        );
        assert!(files[0].ends_with(".idx") && files[1].ends_with(".pack"));

        // git itself agrees with the index: every object, once.
        let idx = pack_dir.join(&files[0]);
        match std::process::Command::new("git")
            .args(["verify-pack", "-v"])
            .arg(&idx)
            .output()
        {
            Ok(out) => {
                let text = String::from_utf8_lossy(&out.stdout);
                assert!(
                    out.status.success(),
                    "{text}{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                assert!(text.contains("non delta: 150 objects"), "{text}");
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {} // no git here
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn the_index_lists_sorted_ids_with_offsets_and_checksums() {
        let a = Oid::from_str("ab00000000000000000000000000000000000000").unwrap();
        let b = Oid::from_str("0100000000000000000000000000000000000000").unwrap();
        let mut objects = [(a, 12, 7), (b, 40, 9)];
        let idx = index_v2(&mut objects, &[0x55; 20]);
        assert_eq!(idx.len(), 8 + 1024 + 2 * (20 + 4 + 4) + 40);
        let word = |at: usize| u32::from_be_bytes(idx[at..at + 4].try_into().unwrap());
        assert_eq!((word(8), word(8 + 4 * 0xaa), word(8 + 4 * 0xab)), (0, 1, 2));
        let names = 8 + 1024;
        assert_eq!(&idx[names..names + 20], b.as_bytes());
        assert_eq!((word(names + 40), word(names + 44)), (9, 7), "checksums");
        assert_eq!((word(names + 48), word(names + 52)), (40, 12), "offsets");
    }
}
