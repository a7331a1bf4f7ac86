//! Many blobs into a repository as one pack file.
//!
//! libgit2 writes every new object as its own loose file (plus the
//! directories that fan them out). For a first commit of 10,000 policies,
//! creating those files is most of the time. A pack is one stream, one file:
//! blobs are hashed and compressed here (no delta search, which is what makes
//! libgit2's own pack builder slow for this), and libgit2's indexer writes the
//! pack and its index into the object database.

use std::io::Write;

use flate2::write::ZlibEncoder;
use flate2::Compression;
use git2::{Oid, Repository};

use crate::repo::GitError;

/// Below this many blobs, loose objects are as fast and simpler.
const PACK_THRESHOLD: usize = 64;
const THREADS: usize = 2;

/// Writes each blob and returns its id, in order.
pub fn write_blobs(repo: &Repository, blobs: &[(String, &[u8])]) -> Result<Vec<Oid>, GitError> {
    if blobs.len() < PACK_THRESHOLD {
        return blobs
            .iter()
            .map(|(path, bytes)| {
                repo.blob(bytes).map_err(|e| GitError::Git {
                    context: format!("write {path}"),
                    message: e.message().to_owned(),
                })
            })
            .collect();
    }
    let err = |e: &dyn std::fmt::Display| GitError::Git {
        context: "write the new objects as a pack".into(),
        message: e.to_string(),
    };
    // Hash and compress on both cores; the entries keep their order.
    let chunk = blobs.len().div_ceil(THREADS);
    let entries: Vec<(Oid, Vec<u8>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = blobs
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(|(_, b)| entry(b)).collect::<Vec<_>>()))
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a pack worker panicked"))
            .collect()
    });

    let mut pack = Vec::with_capacity(entries.iter().map(|(_, e)| e.len()).sum::<usize>() + 32);
    pack.extend_from_slice(b"PACK");
    pack.extend_from_slice(&2u32.to_be_bytes());
    pack.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    for (_, e) in &entries {
        pack.extend_from_slice(e);
    }
    let trailer = sha1_smol::Sha1::from(&pack).digest().bytes();
    pack.extend_from_slice(&trailer);

    let odb = repo.odb().map_err(|e| err(&e))?;
    let mut writer = odb.packwriter().map_err(|e| err(&e))?;
    writer.write_all(&pack).map_err(|e| err(&e))?;
    writer.commit().map_err(|e| err(&e))?;
    Ok(entries.into_iter().map(|(id, _)| id).collect())
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
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = contents.len().div_ceil(threads).max(256);
    std::thread::scope(|scope| {
        let workers: Vec<_> = contents
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(|c| blob_id(c)).collect::<Vec<_>>()))
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a hashing worker panicked"))
            .collect()
    })
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
        let contents: Vec<Vec<u8>> = (0..200)
            .map(|i| format!("policy {i}\n").repeat(i % 40 + 1).into_bytes())
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
        let packs = std::fs::read_dir(tmp.path().join(".git/objects/pack"))
            .unwrap()
            .count();
        assert_eq!(packs, 2, "one .pack and its .idx, no loose objects");
    }
}
