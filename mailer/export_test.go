package mailer

// SkipDrainProbe makes p trust that the relay reads the chunks it
// refuses, so that tests can exercise what Conn does when it does not.
func SkipDrainProbe(p *Pool) { p.skipDrainProbe = true }

// Undrained reports whether p found that the relay does not read the
// chunks it refuses.
func Undrained(p *Pool) bool { return p.undrained.Load() }
