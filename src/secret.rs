//! Tokens: strings that never print.
//!
//! Enters: a token from the environment or a file. Leaves: the same token,
//! which `Debug` and `Display` show as `<redacted>`, so no log line, error
//! or summary can carry it by accident; the one place that sends it calls
//! [`Token::expose`].

use std::fmt;
use std::path::Path;

/// A token file bigger than this is not a token; reading stops there, so
/// `--token-file /dev/zero` fails instead of eating memory.
const MAX_TOKEN_FILE_BYTES: u64 = 64 * 1024;

/// A bearer token. Debug and Display never show it.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    pub fn new(token: String) -> Self {
        Token(token)
    }

    /// Reads a token file named by `flag`; surrounding whitespace (a final
    /// newline) is not part of the token. Errors name the flag and the
    /// path, never the content.
    pub fn from_file(flag: &str, path: &Path) -> Result<Self, String> {
        use std::io::Read;
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_TOKEN_FILE_BYTES + 1).read_to_end(&mut bytes))
            .map_err(|e| format!("cannot read {flag} {}: {e}", path.display()))?;
        if bytes.len() as u64 > MAX_TOKEN_FILE_BYTES {
            return Err(format!(
                "{flag} {} is larger than {MAX_TOKEN_FILE_BYTES} bytes, too large for a token",
                path.display()
            ));
        }
        // `String::from_utf8`'s error would carry the bytes; say nothing of them.
        let text = String::from_utf8(bytes)
            .map_err(|_| format!("{flag} {} is not UTF-8 text", path.display()))?;
        let token = text.trim();
        if token.is_empty() {
            return Err(format!("{flag} {} is empty", path.display()));
        }
        Ok(Token(token.to_owned()))
    }

    /// The secret itself, for the one place that needs it: the header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}
