//! Apache's `$apr1$` password hash: md5-crypt (Poul-Henning Kamp's algorithm) with the
//! magic `$apr1$`, as written by `htpasswd -m` and read by nginx. No maintained crate
//! implements it with that magic, so it sits here on top of `md-5`, checked against
//! vectors from Apache's documentation and `openssl passwd -apr1`.

use md5::{Digest, Md5};

const MAGIC: &[u8] = b"$apr1$";
const ITOA64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Computes `$apr1$<salt>$<hash>` for a password and a salt of at most 8 characters
/// (longer salts are cut, as Apache does).
pub fn hash(password: &[u8], salt: &[u8]) -> String {
    let salt = &salt[..salt.len().min(8)];
    let mut ctx = Md5::new();
    ctx.update(password);
    ctx.update(MAGIC);
    ctx.update(salt);

    let alt = Md5::new()
        .chain_update(password)
        .chain_update(salt)
        .chain_update(password)
        .finalize();
    let mut left = password.len();
    while left > 0 {
        let n = left.min(16);
        ctx.update(&alt[..n]);
        left -= n;
    }
    let mut i = password.len();
    while i > 0 {
        if i & 1 == 1 {
            ctx.update([0u8]);
        } else {
            ctx.update(&password[..1]);
        }
        i >>= 1;
    }
    let mut fin = ctx.finalize();

    for round in 0..1000 {
        let mut c = Md5::new();
        if round & 1 == 1 {
            c.update(password);
        } else {
            c.update(fin);
        }
        if round % 3 != 0 {
            c.update(salt);
        }
        if round % 7 != 0 {
            c.update(password);
        }
        if round & 1 == 1 {
            c.update(fin);
        } else {
            c.update(password);
        }
        fin = c.finalize();
    }

    let mut out = String::with_capacity(37);
    out.push_str("$apr1$");
    out.push_str(&String::from_utf8_lossy(salt));
    out.push('$');
    let mut to64 = |mut v: u32, n: usize| {
        for _ in 0..n {
            out.push(ITOA64[(v & 0x3f) as usize] as char);
            v >>= 6;
        }
    };
    for (a, b, c) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        to64(
            (u32::from(fin[a]) << 16) | (u32::from(fin[b]) << 8) | u32::from(fin[c]),
            4,
        );
    }
    to64(u32::from(fin[11]), 2);
    out
}

/// Verifies a password against a full `$apr1$salt$hash` string in constant time.
pub fn verify(password: &[u8], stored: &str) -> bool {
    let Some(rest) = stored.strip_prefix("$apr1$") else {
        return false;
    };
    let Some((salt, _)) = rest.split_once('$') else {
        return false;
    };
    let computed = hash(password, salt.as_bytes());
    subtle::ConstantTimeEq::ct_eq(computed.as_bytes(), stored.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apache_documentation_vector() {
        // `htpasswd -nbm myName myPassword` in Apache's documentation.
        assert_eq!(
            hash(b"myPassword", b"r31....."),
            "$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/"
        );
    }

    #[test]
    fn openssl_vectors() {
        // `openssl passwd -apr1 -salt SALT PASSWORD`.
        for (pw, salt, want) in [
            (
                "p@ss w0rd with a long tail beyond sixteen",
                "saltsalt",
                "$apr1$saltsalt$dnl5vCzzeHO6AxGhFPM1//",
            ),
            ("", "ab", "$apr1$ab$S8K6Sgp3W8c9Jb6LxgywZ."),
            (
                "Ünïcødé",
                "xyz12345",
                "$apr1$xyz12345$JMR1DfYpjS3YTVhg/LSQR1",
            ),
        ] {
            assert_eq!(hash(pw.as_bytes(), salt.as_bytes()), want, "{pw:?}");
            assert!(verify(pw.as_bytes(), want));
        }
    }

    #[test]
    fn wrong_passwords_and_malformed_hashes_fail() {
        let h = "$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/";
        assert!(verify(b"myPassword", h));
        assert!(!verify(b"mypassword", h));
        assert!(!verify(b"myPassword ", h));
        assert!(!verify(b"myPassword", "$apr1$r31....."));
        assert!(!verify(b"myPassword", "$1$r31.....$HqJZimcKQFAMYayBlzkrA/"));
    }
}
