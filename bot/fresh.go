package bot

import (
	"strconv"
	"time"

	"github.com/slack-go/slack"
)

// freshBlockIDs gives every block of a message that replaces another one a
// block_id of its own (the old id with a stamp): Slack clients keep state
// per block_id, and a replaced message must not inherit its predecessor's.
func freshBlockIDs(m message, now time.Time) message {
	stamp := "~" + strconv.FormatInt(now.UnixMilli(), 36)
	blocks := make([]slack.Block, len(m.Blocks))
	for i, blk := range m.Blocks {
		id := func(old string) string {
			if old == "" {
				old = "b" + strconv.Itoa(i)
			}
			return truncate(old, 200) + stamp
		}
		switch x := blk.(type) {
		case *slack.SectionBlock:
			c := *x
			c.BlockID = id(c.BlockID)
			blk = &c
		case *slack.ActionBlock:
			c := *x
			c.BlockID = id(c.BlockID)
			blk = &c
		case *slack.ContextBlock:
			c := *x
			c.BlockID = id(c.BlockID)
			blk = &c
		case *slack.HeaderBlock:
			c := *x
			c.BlockID = id(c.BlockID)
			blk = &c
		case *slack.DividerBlock:
			c := *x
			c.BlockID = id(c.BlockID)
			blk = &c
		}
		blocks[i] = blk
	}
	return message{Text: m.Text, Blocks: blocks}
}
