// Package clicks counts clicks on the item links of a newsletter in
// aggregate, without tracking people.
//
// Counting is optional and off by default, per list (the lists table's
// count_clicks setting, set with `tayori subscribers lists clicks KEY on|off` or in
// the console). When a send of a list that counts clicks is created,
// [Counter.Prepare] records one [Link] per http(s) link of the issue's
// items: the send, the section, the item, the link and the URL, with a
// count of zero. The copies of that send then carry, in place of each item
// link, BASE_URL/c/<token>, where the token (see [Signer]) names the send
// and the link's number in it, signed with a key derived from the
// keyring (TAYORI_SECRET) under [KeyLabel]. The token is the same in
// every reader's copy: it names no reader, and the links are rewritten
// once per rendered variant, not per copy.
//
// [Counter.Click] verifies a token, adds one to its link's count (one
// UPDATE, which also keeps the UTC day of the first and of the last
// click) and returns the URL to redirect to. Nothing else is written:
// no reader id, address, IP address, user agent or cookie, and no row per
// click. Unsubscribe, preference and web-copy links are never rewritten,
// and there is no open pixel.
//
// Counts are a lower bound of interest, not of readers: a reader who
// clicks twice counts twice, and a mail scanner that follows links with
// GET counts too (the web handler does not count HEAD). See
// docs/design/clicks.md.
package clicks
