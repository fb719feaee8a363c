// Package audience defines the vocabulary shared by the issue model and the
// subscriber store: the regions and topics a reader chooses, and the rule
// that decides whether a piece of content is for a reader.
//
// It has no dependencies, so both compose (which tags content) and
// subscribers (which records what readers chose) import it without
// importing each other.
package audience
