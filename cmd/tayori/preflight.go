package main

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/mail"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/net/idna"

	"github.com/tayori-news/tayori/mailer"
	"github.com/tayori-news/tayori/preflight"
)

func newPreflightCmd(a *app) *cobra.Command {
	var (
		bounceDomain, spfInclude, dnsServer, relayCA string
		sendingIPs, skip                             []string
		timeout                                      time.Duration
	)
	c := &cobra.Command{
		Use:   "preflight",
		Short: "Check SPF, DKIM, DMARC, PTR, SOA and the relay's TLS before the first send",
		Long: `Check the DNS and the relay the way mailbox providers will, and print one
line per check: PASS, SKIP, or FAIL with what was found, what was expected
and how to fix it. Exits non-zero when any check fails. Sends no mail.

  spf        the From and bounce domains each have one v=spf1 record that
             authorises the relay (--spf-include, or every sending address)
             within RFC 7208's 10 DNS lookups
  dkim       <TAYORI_DKIM_SELECTOR>._domainkey.<TAYORI_DKIM_DOMAIN> publishes
             the public half of TAYORI_DKIM_KEY_FILE (skipped without DKIM)
  dmarc      _dmarc.<from domain> (or the organisational domain's record) has
             p=none|quarantine|reject and rua=mailto:
  ptr        each sending address has a PTR whose name resolves back to it
  soa        the From and bounce domains exist, with an SOA answering for them
  relay-tls  the relay in TAYORI_SMTP_URL offers STARTTLS (or implicit TLS)
             with a certificate valid for its host name

Sending addresses are the relay host's, unless given with --sending-ip (needed
when the relay is on loopback or a private network, or is a smarthost whose
outbound addresses differ).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cfg, err := a.preflightConfig(bounceDomain, spfInclude, relayCA, sendingIPs, skip, timeout)
			if err != nil {
				return err
			}
			var r *preflight.DNSResolver
			if dnsServer != "" {
				r, err = preflight.NewDNSResolver(strings.Split(dnsServer, ","), timeout)
			} else {
				r, err = preflight.SystemResolver(timeout)
			}
			if err != nil {
				return fmt.Errorf("preflight: %w", err)
			}
			checker, err := preflight.New(cfg, r, a.logger)
			if err != nil {
				return err
			}
			a.logger.DebugContext(ctx, "preflight", "dns_servers", strings.Join(r.Servers(), ","), "relay", cfg.Relay.String())
			rep := checker.Run(ctx)
			var b strings.Builder
			for _, res := range rep.Results {
				b.WriteString(res.String())
				b.WriteByte('\n')
			}
			fmt.Fprintf(&b, "preflight: %d passed, %d failed, %d skipped\n",
				rep.Count(preflight.Pass), rep.Count(preflight.Fail), rep.Count(preflight.Skip))
			if _, err := fmt.Fprint(a.stdout, b.String()); err != nil {
				return err
			}
			if !rep.OK() {
				return errSilent
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&bounceDomain, "bounce-domain", "", `domain of the envelope sender (Return-Path) (default "bounce.<from domain>")`)
	f.StringVar(&spfInclude, "spf-include", "", "SPF domain of the relay's operator that the SPF records must include, e.g. amazonses.com")
	f.StringSliceVar(&sendingIPs, "sending-ip", nil, "public address mail leaves from (repeatable; default: the relay host's addresses)")
	f.StringVar(&dnsServer, "dns-server", "", "name servers to ask, host[:port][,…] (default: those of /etc/resolv.conf)")
	f.StringVar(&relayCA, "relay-ca", "", "PEM file of CA certificates that verify the relay (default: the system's)")
	f.StringSliceVar(&skip, "skip", nil, "checks to skip: "+strings.Join(preflight.Checks, ", "))
	f.DurationVar(&timeout, "timeout", 10*time.Second, "timeout of each DNS query and of the relay conversation")
	return c
}

// preflightConfig builds the checks' configuration from Tayori's and the
// flags. The DKIM key is read only to derive its public half.
func (a *app) preflightConfig(bounceDomain, spfInclude, relayCA string, sendingIPs, skip []string, timeout time.Duration) (preflight.Config, error) {
	var problems []string
	from, err := mail.ParseAddress(a.cfg.From)
	var fromDomain string
	if err == nil {
		fromDomain, err = asciiDomain(from.Address[strings.LastIndexByte(from.Address, '@')+1:])
	}
	if err != nil {
		problems = append(problems, fmt.Sprintf("TAYORI_FROM: %v", err))
	}
	if bounceDomain != "" {
		if bounceDomain, err = asciiDomain(bounceDomain); err != nil {
			problems = append(problems, fmt.Sprintf("--bounce-domain: %v", err))
		}
	}
	relay, err := mailer.ParseSMTPURL(a.cfg.SMTPURL)
	if err != nil {
		problems = append(problems, fmt.Sprintf("TAYORI_SMTP_URL: %v", err))
	}
	cfg := preflight.Config{
		FromDomain: fromDomain, BounceDomain: bounceDomain, SPFInclude: spfInclude,
		Relay: relay, Timeout: timeout, Skip: skip,
	}
	for _, s := range sendingIPs {
		ip, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil {
			problems = append(problems, fmt.Sprintf("--sending-ip %q: not an IP address", s))
			continue
		}
		cfg.SendingIPs = append(cfg.SendingIPs, ip.Unmap())
	}
	if relayCA != "" {
		pem, err := os.ReadFile(relayCA)
		if err != nil {
			problems = append(problems, fmt.Sprintf("--relay-ca: %v", err))
		} else {
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				problems = append(problems, fmt.Sprintf("--relay-ca %s: no PEM certificate in it", relayCA))
			}
		}
	}
	if a.cfg.DKIMKeyFile != "" {
		pem, err := os.ReadFile(a.cfg.DKIMKeyFile)
		if err != nil {
			problems = append(problems, fmt.Sprintf("TAYORI_DKIM_KEY_FILE: %v", err))
		} else if key, err := mailer.ParseDKIMKey(pem); err != nil {
			problems = append(problems, fmt.Sprintf("TAYORI_DKIM_KEY_FILE %s: %v", a.cfg.DKIMKeyFile, err))
		} else {
			cfg.DKIMDomain, cfg.DKIMSelector, cfg.DKIMPublicKey = a.cfg.DKIMDomain, a.cfg.DKIMSelector, key.Public()
		}
	}
	if len(problems) > 0 {
		return cfg, errors.New("preflight: " + strings.Join(problems, "; "))
	}
	return cfg, nil
}

// asciiDomain returns an internationalised domain in its A-label form, as
// DNS stores it.
func asciiDomain(d string) (string, error) {
	a, err := idna.Lookup.ToASCII(strings.TrimSuffix(strings.TrimSpace(d), "."))
	if err != nil {
		return "", fmt.Errorf("domain %q: %w", d, err)
	}
	return strings.ToLower(a), nil
}
