package queue

import (
	"context"
	"fmt"
	"strconv"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/compose"
)

// prepareClicks records the links of a new send whose list counts clicks
// (Deps.Clicks). A failure is logged and the send goes with its links as
// written: counting is never a reason not to send.
func (s *Service) prepareClicks(ctx context.Context, sendID int64, list string, issue *compose.Issue) {
	if s.deps.Clicks == nil {
		return
	}
	on, err := s.deps.Clicks.Prepare(ctx, sendID, list, issue)
	if err != nil {
		s.log.WarnContext(ctx, "clicks not counted for this send", "send_id", sendID, "list", list, "err", err)
		return
	}
	if on {
		s.log.InfoContext(ctx, "clicks counted in aggregate", "send_id", sendID, "list", list)
	}
}

// clickLinks returns the rewriting of a send's item links, nil when it
// does not count clicks.
func (s *Service) clickLinks(ctx context.Context, sendID int64) (func(item, link int) string, error) {
	if s.deps.Clicks == nil {
		return nil, nil
	}
	f, err := s.deps.Clicks.LinkURLs(ctx, sendID)
	if err != nil {
		return nil, fmt.Errorf("queue: counted links of send %d: %w", sendID, err)
	}
	return f, nil
}

// renderVariant renders the variant of a send for prefs, its item links
// rewritten when the send counts clicks: once per variant, never per copy.
func (s *Service) renderVariant(ctx context.Context, sc *sendCache, prefs audience.Prefs) (Rendered, error) {
	if sc.links != nil {
		if lr, ok := s.deps.Renderer.(LinkRenderer); ok {
			return lr.RenderLinks(ctx, sc.snd.Issue, prefs, "send:"+strconv.FormatInt(sc.snd.ID, 10), sc.links)
		}
	}
	return s.deps.Renderer.Render(ctx, sc.snd.Issue, prefs)
}
