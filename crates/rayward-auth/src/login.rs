//! The login form a browser is shown: no script, nothing but inline style, so the page
//! can be served with a Content-Security-Policy that allows nothing else.

/// The Content-Security-Policy to serve [`page`] with: no script, no framing, and the
/// form may post only to its own origin.
pub const CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'";

/// The login form, posting `user`, `password` and the CSRF token `csrf` (a hidden field,
/// [`crate::session::Sessions::csrf_issue`]) to `action`; `failed` adds the "wrong user
/// name or password" line. `title` names what is behind the login.
pub fn page(title: &str, action: &str, failed: bool, csrf: &str) -> String {
    let note = if failed {
        "<p class=e>Wrong user name or password.</p>"
    } else {
        ""
    };
    let (title, action, csrf) = (escape(title), escape(action), escape(csrf));
    format!(
        "<!doctype html><html><head><meta charset=utf-8><title>{title} login</title>\
<style>body{{font-family:sans-serif;max-width:20em;margin:4em auto}}input{{display:block;width:100%;margin:.3em 0 1em}}.e{{color:#b00}}</style>\
</head><body><h1>{title}</h1>{note}<form method=post action=\"{action}\">\
<input type=hidden name=csrf value=\"{csrf}\">\
<label>User<input name=user autocomplete=username required></label>\
<label>Password<input name=password type=password autocomplete=current-password required></label>\
<button type=submit>Log in</button></form></body></html>"
    )
}

/// HTML-escapes text for an element or a double-quoted attribute.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_form_posts_to_its_action_and_escapes_what_it_is_given() {
        let p = super::page("Ray dashboard", "/rayward/login", true, "tok-1");
        assert!(p.contains("<input type=hidden name=csrf value=\"tok-1\">"));
        assert!(p.contains("<title>Ray dashboard login</title>"));
        assert!(p.contains("action=\"/rayward/login\""));
        assert!(p.contains("Wrong user name or password."));
        assert!(!p.contains("<script"));
        let q = super::page("<b>x</b>", "/a\"b", false, "t");
        assert!(q.contains("&lt;b&gt;x&lt;/b&gt;") && q.contains("/a&quot;b"));
        assert!(!q.contains("Wrong"));
    }
}
