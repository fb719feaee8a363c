// Package preflight checks, before the first send, that the DNS and the
// relay are set up the way mailbox providers require (deliverability
// checklist item 38), and says for every check what it found, what it
// expected and how to fix it.
//
// The checks:
//
//   - SPF: the From domain and the bounce (MAIL FROM) domain each publish
//     exactly one "v=spf1" record, the record authorises the relay (it
//     includes Config.SPFInclude, or it gives "pass" for every sending
//     address), and it evaluates within RFC 7208's limit of 10 DNS lookups.
//     Evaluation is done by blitiri.com.ar/go/spf on our Resolver.
//   - DKIM: <selector>._domainkey.<domain> publishes the public half of the
//     signing key, and the signing domain is aligned with the From domain.
//   - DMARC: _dmarc.<from domain>, or the organisational domain's record
//     (RFC 7489 §6.6.3, with the Public Suffix List), has p= none,
//     quarantine or reject and a rua= address; a rua= in another
//     organisational domain must be authorised by it (RFC 7489 §7.1).
//   - PTR: each sending address has a PTR whose name resolves back to it
//     (forward-confirmed reverse DNS).
//   - SOA: the From domain and the bounce domain exist in DNS and an SOA
//     answers for them (their own, or their zone's).
//   - Relay TLS: the relay offers STARTTLS (or speaks implicit TLS) with a
//     certificate valid for its host name, and Tayori is configured to use it.
//     No mail is sent.
//
// DNS comes through the Resolver interface: DNSResolver asks the servers of
// /etc/resolv.conf (or given ones) with github.com/miekg/dns, which, unlike
// net.Resolver, can ask for SOA records. Tests use a stub, and the
// preflight/dnstest package serves records on loopback.
package preflight
