//! Finding a `log_format` directive in the text of an nginx configuration.
//!
//! A small tokenizer following nginx's own (`ngx_conf_read_token`): words, `'…'` and `"…"`
//! strings with `\"`, `\'`, `\\`, `\t`, `\r`, `\n` escapes, `#` comments, and `;`, `{`, `}`.
//! `include` directives are not followed: pass the text of the file that defines the format.

use super::{Escape, LogFormatError};

#[derive(Debug, PartialEq, Eq)]
enum Token {
    Word(String),
    End,
    Open,
    Close,
}

fn tokens(conf: &str) -> Result<Vec<(Token, usize)>, LogFormatError> {
    let mut out = Vec::new();
    let mut chars = conf.chars().peekable();
    let mut line = 1;
    while let Some(&c) = chars.peek() {
        match c {
            '\n' => {
                line += 1;
                chars.next();
            }
            c if c.is_whitespace() => {
                chars.next();
            }
            '#' => {
                while chars.peek().is_some_and(|&c| c != '\n') {
                    chars.next();
                }
            }
            ';' | '{' | '}' => {
                chars.next();
                let token = match c {
                    ';' => Token::End,
                    '{' => Token::Open,
                    _ => Token::Close,
                };
                out.push((token, line));
            }
            '"' | '\'' => {
                let quote = c;
                let start_line = line;
                chars.next();
                let mut word = String::new();
                loop {
                    match chars.next() {
                        None => {
                            return Err(LogFormatError::Config {
                                line: start_line,
                                message: "unclosed quote",
                            });
                        }
                        Some(c) if c == quote => break,
                        Some('\\') => match chars.next() {
                            Some(e @ ('"' | '\'' | '\\')) => word.push(e),
                            Some('t') => word.push('\t'),
                            Some('r') => word.push('\r'),
                            Some('n') => word.push('\n'),
                            Some(other) => {
                                if other == '\n' {
                                    line += 1;
                                }
                                word.push('\\');
                                word.push(other);
                            }
                            None => word.push('\\'),
                        },
                        Some(c) => {
                            if c == '\n' {
                                line += 1;
                            }
                            word.push(c);
                        }
                    }
                }
                out.push((Token::Word(word), start_line));
            }
            _ => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || matches!(c, ';' | '{' | '}') {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                out.push((Token::Word(word), line));
            }
        }
    }
    Ok(out)
}

/// The escape mode and the concatenated format string of `log_format <name> ...;`.
pub(super) fn find_log_format(
    conf: &str,
    name: &str,
) -> Result<Option<(Escape, String)>, LogFormatError> {
    let tokens = tokens(conf)?;
    let mut directive: Vec<&str> = Vec::new();
    for (token, _) in &tokens {
        match token {
            Token::Word(word) => directive.push(word),
            Token::End => {
                if let ["log_format", found, args @ ..] = directive.as_slice() {
                    if *found == name {
                        return log_format_args(args).map(Some);
                    }
                }
                directive.clear();
            }
            Token::Open | Token::Close => directive.clear(),
        }
    }
    Ok(None)
}

fn log_format_args(args: &[&str]) -> Result<(Escape, String), LogFormatError> {
    let (escape, strings) = match args {
        [first, rest @ ..] if first.starts_with("escape=") => {
            let value = &first["escape=".len()..];
            let escape = match value {
                "default" => Escape::Default,
                "json" => Escape::Json,
                "none" => Escape::None,
                _ => {
                    return Err(LogFormatError::UnknownEscape {
                        value: value.to_owned(),
                    });
                }
            };
            (escape, rest)
        }
        strings => (Escape::Default, strings),
    };
    Ok((escape, strings.concat()))
}

#[cfg(test)]
mod tests {
    use super::super::LogFormat;
    use super::*;

    const CONF: &str = r#"
user nginx;
http {
    # log_format commented '$status';
    log_format  main  '$remote_addr - $remote_user [$time_local] "$request" '
                      '$status $body_bytes_sent "$http_referer" '
                      "\"$http_user_agent\" $request_time";
    log_format json_log escape=json '{"s":$status,'
        '"rt":$request_time}';
    server { access_log /var/log/nginx/access.log main; }
}
"#;

    #[test]
    fn concatenates_the_strings_of_the_directive() {
        let (escape, source) = find_log_format(CONF, "main").unwrap().unwrap();
        assert_eq!(escape, Escape::Default);
        assert_eq!(
            source,
            r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $request_time"#
        );
        let format = LogFormat::from_nginx_conf(CONF, "json_log").unwrap();
        assert_eq!(format.escape(), Escape::Json);
        assert_eq!(format.source(), r#"{"s":$status,"rt":$request_time}"#);
    }

    #[test]
    fn combined_is_predefined_and_other_names_must_exist() {
        let combined = LogFormat::from_nginx_conf(CONF, "combined").unwrap();
        assert_eq!(combined.source(), super::super::COMBINED);
        assert_eq!(
            LogFormat::from_nginx_conf(CONF, "commented").unwrap_err(),
            LogFormatError::NotFound {
                name: "commented".to_owned()
            }
        );
    }

    #[test]
    fn config_errors_name_the_line() {
        assert_eq!(
            find_log_format("http {\n log_format x '$status;\n}", "x").unwrap_err(),
            LogFormatError::Config {
                line: 2,
                message: "unclosed quote"
            }
        );
        assert_eq!(
            find_log_format("log_format x escape=xml '$status';", "x").unwrap_err(),
            LogFormatError::UnknownEscape {
                value: "xml".to_owned()
            }
        );
    }
}
