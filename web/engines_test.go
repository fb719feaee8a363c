package web_test

import (
	"testing"

	"github.com/tayori-news/tayori/internal/store"
)

// TestOnPostgreSQL runs the reader's and the editor's journeys again with
// every store on PostgreSQL (the other tests run on SQLite, the embedded
// default; the stores themselves are tested on both engines in
// internal/store and the domain packages). The journeys chosen are those
// that go through every table the web server writes: signup, confirm,
// preferences, one-click unsubscribe, a returning reader, the composer and
// its revisions, a send from the console and from the API, the audit log,
// webhooks, the welcome mail and the monthly rhythm.
func TestOnPostgreSQL(t *testing.T) {
	journeys := []struct {
		name string
		run  func(*testing.T)
	}{
		{"Confirm", TestConfirm},
		{"PreferenceCentre", TestPreferenceCentre},
		{"OneClickUnsubscribe", TestOneClickUnsubscribe},
		{"ReturningReaderGetsNewChoice", TestReturningReaderGetsNewChoice},
		{"UsedConfirmLinkOfSubscribedReader", TestUsedConfirmLinkOfSubscribedReader},
		{"ArchiveOrderedByPeriod", TestArchiveOrderedByPeriod},
		{"NothingThisMonthReaders", TestNothingThisMonthReaders},
		{"ConsoleIssueToSend", TestConsoleIssueToSend},
		{"ConsoleSendOnce", TestConsoleSendOnce},
		{"APISendOnce", TestAPISendOnce},
		{"ComposerSaveLintPreview", TestComposerSaveLintPreview},
		{"ComposerConflict", TestComposerConflict},
		{"ComposerLockAndCorrection", TestComposerLockAndCorrection},
		{"AuditLog", TestAuditLog},
		{"WebhooksReaderJourney", TestWebhooksReaderJourney},
		{"WelcomeMailOnConfirm", TestWelcomeMailOnConfirm},
		{"RhythmConsole", TestRhythmConsole},
		{"ClicksJourney", TestClicksJourney},
	}
	testEngine = store.Postgres
	t.Cleanup(func() { testEngine = store.SQLite })
	for _, j := range journeys {
		t.Run(j.name, j.run)
	}
}
