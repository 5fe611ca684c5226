package collector

import "regexp"

// redacted replaces every secret value.
const redacted = "***"

// secretWords are parts of a flag, variable or parameter name that mark its
// value as a secret wherever they appear in the name: --db-password,
// PGPASSWORD, AWS_SECRET_ACCESS_KEY, GITHUB_TOKEN, api_key... Over-scrubbing
// a harmless value costs a little readability; under-scrubbing leaks a
// credential to everyone who can read the UI, so the list errs wide.
const secretWords = `passw(?:or)?d|passphrase|secret|token|credential|api[-_.]?key|access[-_.]?key|private[-_.]?key|auth[-_.]?key|session[-_.]?key|client[-_.]?key`

// shortSecretWords are secret only as a whole segment of a name
// (MYSQL_PWD, --pass, db.pw), because inside words they are common
// (bypass, compass).
const shortSecretWords = `pass|pwd|pw`

// nameChars may surround a secret word inside a name.
const nameChars = `[A-Za-z0-9_.\-]*`

// secretName matches a whole name holding a secret word.
const secretName = `(?:` + nameChars + `(?:` + secretWords + `)` + nameChars +
	`|(?:` + nameChars + `[_.\-])?(?:` + shortSecretWords + `)(?:[_.\-]` + nameChars + `)?)`

var (
	// scheme://user:password@host keeps the user, hides the password.
	reURLCreds = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.\-]*://[^\s/:@]*:)[^\s/@]+@`)
	// name=value, --name=value, and query parameters (?token=...&).
	reKeyValue = regexp.MustCompile(`(?i)((?:^|[\s?&;,"'])-{0,2}` + secretName + `=)[^\s&;,"']+`)
	// --password value, -token value: the next word is the value unless
	// it is itself a flag.
	reFlagSpace = regexp.MustCompile(`(?i)((?:^|\s)--?` + secretName + `\s+)[^\s\-]\S*`)
	// Authorization headers given on the command line (curl -H ...).
	reAuthHeader = regexp.MustCompile(`(?i)(\b(?:bearer|basic|token)\s+)[A-Za-z0-9._~+/=\-]{8,}`)
	// JSON given as an argument: {"password": "x"}.
	reJSON = regexp.MustCompile(`(?i)("` + secretName + `"\s*:\s*")(?:[^"\\]|\\.)+"`)
	// curl -u user:password / --user user:password, but not -u URL.
	reUserFlag = regexp.MustCompile(`((?:^|\s)(?:-u|--user|--proxy-user)\s+[^\s:/@]*:)[^\s/]\S*`)
)

// ScrubCmdline hides secrets in a command line before it leaves the host:
// values of password/secret/token/key-like flags, variables and query
// parameters and JSON keys, credentials in URLs, bearer tokens and curl's
// -u user:pass.
// What is kept is the structure, so the command stays recognisable.
func ScrubCmdline(s string) string {
	s = reURLCreds.ReplaceAllString(s, "${1}"+redacted+"@")
	s = reKeyValue.ReplaceAllString(s, "${1}"+redacted)
	s = reFlagSpace.ReplaceAllString(s, "${1}"+redacted)
	s = reAuthHeader.ReplaceAllString(s, "${1}"+redacted)
	s = reUserFlag.ReplaceAllString(s, "${1}"+redacted)
	s = reJSON.ReplaceAllString(s, "${1}"+redacted+`"`)
	return s
}
