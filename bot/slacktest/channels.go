package slacktest

import (
	"fmt"
	"strings"
)

type channel struct {
	id, name   string
	private    bool
	archived   bool
	readOnly   bool
	threadOnly bool
	botMember  bool
	members    map[string]bool
}

// ChannelOption configures a channel added with AddChannel.
type ChannelOption func(*channel)

// ChannelPrivate makes the channel private: without the bot, posting to it
// fails with channel_not_found (as for a DM).
func ChannelPrivate() ChannelOption { return func(c *channel) { c.private = true } }

// ChannelWithoutBot leaves the bot out of the channel: posting fails with
// not_in_channel (public) or channel_not_found (private, DM).
func ChannelWithoutBot() ChannelOption { return func(c *channel) { c.botMember = false } }

// ChannelArchived archives the channel: posting fails with is_archived,
// chat.update with is_inactive.
func ChannelArchived() ChannelOption { return func(c *channel) { c.archived = true } }

// ChannelReadOnly makes the channel read-only (an announcement channel):
// chat.postMessage fails with restricted_action_read_only_channel.
func ChannelReadOnly() ChannelOption { return func(c *channel) { c.readOnly = true } }

// ChannelThreadOnly makes the channel thread-only: top-level posts fail with
// restricted_action_thread_only_channel, thread replies are allowed.
func ChannelThreadOnly() ChannelOption { return func(c *channel) { c.threadOnly = true } }

// ChannelMembers adds human members (needed for chat.postEphemeral).
func ChannelMembers(userIDs ...string) ChannelOption {
	return func(c *channel) {
		for _, u := range userIDs {
			c.members[u] = true
		}
	}
}

// AddChannel adds or replaces a channel. By default it is public and the bot
// is a member. IDs starting with "D" are direct messages and behave like
// private channels. DefaultChannelID exists on every new server.
func (s *Server) AddChannel(id, name string, opts ...ChannelOption) {
	ch := &channel{id: id, name: name, botMember: true, members: map[string]bool{}}
	for _, o := range opts {
		o(ch)
	}
	s.mu.Lock()
	s.channels[id] = ch
	s.notifyLocked()
	s.mu.Unlock()
}

// JoinChannel makes a user a member of an existing channel.
func (s *Server) JoinChannel(channelID, userID string) {
	s.mu.Lock()
	if ch := s.channels[channelID]; ch != nil {
		ch.members[userID] = true
	}
	s.mu.Unlock()
}

// SetChannelArchived archives (on) or unarchives (off) an existing channel.
func (s *Server) SetChannelArchived(channelID string, on bool) error {
	return s.setChannel(channelID, func(c *channel) { c.archived = on })
}

// SetChannelReadOnly makes an existing channel read-only (on) or normal (off).
func (s *Server) SetChannelReadOnly(channelID string, on bool) error {
	return s.setChannel(channelID, func(c *channel) { c.readOnly = on })
}

// SetChannelThreadOnly makes an existing channel thread-only (on) or normal (off).
func (s *Server) SetChannelThreadOnly(channelID string, on bool) error {
	return s.setChannel(channelID, func(c *channel) { c.threadOnly = on })
}

func (s *Server) setChannel(channelID string, f func(*channel)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.channels[channelID]
	if ch == nil {
		return fmt.Errorf("channel %s: %w", channelID, ErrNoSuchChannel)
	}
	f(ch)
	s.notifyLocked()
	return nil
}

// LockThread locks (on) or unlocks (off) the thread under the message ts, as
// an admin can: chat.postMessage replies fail with
// restricted_action_thread_locked.
func (s *Server) LockThread(channelID, ts string, on bool) error {
	return s.setMessage(channelID, ts, func(st *stored) { st.threadLocked = on })
}

// SetNoReplies marks the message ts as one that cannot have a thread (on):
// replies to it fail with cannot_reply_to_message.
func (s *Server) SetNoReplies(channelID, ts string, on bool) error {
	return s.setMessage(channelID, ts, func(st *stored) { st.noReplies = on })
}

// CloseEditWindow makes the message ts too old to edit under the
// workspace's edit settings: chat.update fails with edit_window_closed.
func (s *Server) CloseEditWindow(channelID, ts string) error {
	return s.setMessage(channelID, ts, func(st *stored) { st.editClosed = true })
}

func (s *Server) setMessage(channelID, ts string, f func(*stored)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.index[channelID+"/"+ts]
	if st == nil || st.deleted {
		return fmt.Errorf("message %s/%s: %w", channelID, ts, ErrNoSuchMessage)
	}
	f(st)
	s.notifyLocked()
	return nil
}

// DMChannel returns the id (D…) of the app's direct message channel with a
// known user, creating it on first use like Slack does when the bot posts to
// the user id or the user opens the app's Home. It returns "" for an unknown user.
func (s *Server) DMChannel(userID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch := s.dmChannelLocked(userID); ch != nil {
		return ch.id
	}
	return ""
}

// dmChannelLocked returns the app's DM with a known user, creating it: the
// bot and the user are its members. The id is "D" + the user id without its
// first letter when that is free.
func (s *Server) dmChannelLocked(userID string) *channel {
	if id, ok := s.dms[userID]; ok {
		return s.channels[id]
	}
	if _, known := s.users[userID]; !known || len(userID) < 2 || userID == s.cfg.botUserID {
		return nil
	}
	id := "D" + userID[1:]
	if _, taken := s.channels[id]; taken {
		id = "D" + strings.ToUpper(s.nextIDLocked())
	}
	ch := &channel{id: id, private: true, botMember: true, members: map[string]bool{userID: true}}
	s.channels[id] = ch
	s.dms[userID] = id
	s.notifyLocked()
	return ch
}
