package postgres

import "github.com/tayori-news/tayori/subscribers"

// ImportUnchecked reports whether an import session's merges skip their
// foreign-key checks (session_replication_role = replica).
func ImportUnchecked(sess subscribers.ImportSession) bool { return sess.(*subImport).unchecked }

// SubMerge and SubMergePlain are the import's merge with and without
// ON CONFLICT.
var SubMerge, SubMergePlain = subMerge, subMergePlain
