package slacktest

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// View limits of views.publish (Slack's method reference and view docs).
const (
	maxViewBytes       = 250 * 1024
	maxPrivateMetadata = 3000
)

// HomeView is a Home tab view published for a user with views.publish.
type HomeView struct {
	// ID and Hash are new on every publish; Hash is what a later publish
	// must quote to replace this view.
	ID, Hash string
	User     string
	// Blocks is the blocks JSON array as published.
	Blocks                                  json.RawMessage
	PrivateMetadata, CallbackID, ExternalID string
	Time                                    time.Time
}

// Buttons returns the buttons in the view's actions blocks and section accessories.
func (v HomeView) Buttons() []Button { return Message{Blocks: v.Blocks}.Buttons() }

// VisibleText renders what the user reads on the Home tab (see Message.VisibleText).
func (v HomeView) VisibleText() string { return Message{Blocks: v.Blocks}.VisibleText() }

// SetHomeTab turns the app's Home tab on (the default) or off; with it off
// views.publish answers not_enabled.
func (s *Server) SetHomeTab(enabled bool) {
	s.mu.Lock()
	s.homeEnabled = enabled
	s.mu.Unlock()
}

// HomeView returns the user's current Home view, if one was published.
func (s *Server) HomeView(userID string) (HomeView, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.currentHomeLocked(userID)
}

// HomeViews returns every view published for the user, oldest first: its
// length is the number of successful publishes.
func (s *Server) HomeViews(userID string) []HomeView {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.homes[userID])
}

// WaitHomeView waits until the user's current Home view matches and returns it.
func (s *Server) WaitHomeView(ctx context.Context, userID string, match func(HomeView) bool) (HomeView, error) {
	var found HomeView
	err := s.waitFor(ctx, func() bool {
		v, ok := s.currentHomeLocked(userID)
		if ok && match(v) {
			found = v
			return true
		}
		return false
	})
	return found, err
}

func (s *Server) currentHomeLocked(userID string) (HomeView, bool) {
	h := s.homes[userID]
	if len(h) == 0 {
		return HomeView{}, false
	}
	return h[len(h)-1], true
}

// viewsPublish serves views.publish: {user_id, view: {type: "home", blocks,
// private_metadata?, callback_id?, external_id?}, hash?}.
func (s *Server) viewsPublish(p params) apiResult {
	userID, raw := p.get("user_id"), p.get("view")
	if userID == "" {
		return slackError("invalid_arguments", "[ERROR] invalid `user_id`")
	}
	if raw == "" {
		return slackError("invalid_arguments", "[ERROR] missing required field: view")
	}
	if len(raw) > maxViewBytes {
		return slackError("view_too_large")
	}
	var view map[string]json.RawMessage
	if json.Unmarshal([]byte(raw), &view) != nil || view == nil {
		return slackError("invalid_arguments", "[ERROR] must provide an object [json-pointer:/view]")
	}
	v, msgs := checkHomeView(view)
	if len(msgs) > 0 {
		return slackError("invalid_arguments", msgs...)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.homeEnabled {
		return slackError("not_enabled")
	}
	if _, known := s.users[userID]; !known || userID == s.cfg.botUserID {
		return slackError("user_not_found")
	}
	current, has := s.currentHomeLocked(userID)
	if hash := p.get("hash"); hash != "" && (!has || hash != current.Hash) {
		return slackError("hash_conflict")
	}
	if v.ExternalID != "" {
		for user, views := range s.homes {
			if user != userID && views[len(views)-1].ExternalID == v.ExternalID {
				return slackError("duplicate_external_id")
			}
		}
	}
	now := time.Now()
	v.User, v.Time = userID, now
	v.ID = "V" + strings.ToUpper(s.nextIDLocked())
	v.Hash = fmt.Sprintf("%d.%s", now.Unix(), randomHex(4))
	s.homes[userID] = append(s.homes[userID], v)
	s.notifyLocked()
	return okResult(map[string]any{"view": s.viewObjectLocked(v)})
}

// checkHomeView validates a view object for the Home tab and returns it as a
// HomeView (without id, hash, user) or Slack-style messages.
func checkHomeView(view map[string]json.RawMessage) (HomeView, []string) {
	c := &blockCheck{blockIDs: map[string]bool{}}
	if kind, _ := c.str("/view", view, "type"); kind != "home" {
		c.fail("/view/type", "must be one of [home]")
	}
	var v HomeView
	v.PrivateMetadata, _ = c.str("/view", view, "private_metadata")
	if utf8.RuneCountInString(v.PrivateMetadata) > maxPrivateMetadata {
		c.fail("/view/private_metadata", "must be less than %d characters", maxPrivateMetadata+1)
	}
	v.CallbackID = c.optionalID("/view", view, "callback_id")
	v.ExternalID = c.optionalID("/view", view, "external_id")
	if len(c.msgs) > 0 {
		return v, c.msgs
	}
	blocks, ok := view["blocks"]
	if !ok || string(blocks) == "null" {
		return v, []string{"[ERROR] missing required field: blocks [json-pointer:/view]"}
	}
	compact, _, code, msgs := validateBlocks(string(blocks), maxViewBlocks, "/view/blocks")
	if code != "" {
		return v, msgs
	}
	v.Blocks = compact
	return v, nil
}

// viewObjectLocked renders a Home view as Slack's view object (the shape of
// views.publish's answer, app_home_opened's view and block_actions' view).
func (s *Server) viewObjectLocked(v HomeView) map[string]any {
	blocks := v.Blocks
	if len(blocks) == 0 {
		blocks = json.RawMessage(`[]`)
	}
	return map[string]any{
		"id": v.ID, "team_id": s.cfg.teamID, "type": "home", "close": nil, "submit": nil,
		"blocks": blocks, "private_metadata": v.PrivateMetadata, "callback_id": v.CallbackID,
		"state": map[string]any{"values": map[string]any{}}, "hash": v.Hash,
		"clear_on_close": false, "notify_on_close": false,
		"root_view_id": v.ID, "previous_view_id": nil, "app_id": s.cfg.appID,
		"external_id": v.ExternalID, "app_installed_team_id": s.cfg.teamID, "bot_id": s.cfg.botID,
	}
}

// AppHomeOpened describes a user opening the app in Slack. Zero fields get
// defaults: UserID DefaultUserID, Tab "home" (or "messages"), APIAppID the
// server's app (set another to send another app's event).
type AppHomeOpened struct {
	UserID   string
	Tab      string
	APIAppID string
}

// SendAppHomeOpened delivers an events_api envelope with an app_home_opened
// event (channel: the app's DM with the user; view: the user's current Home
// view, if any, on the home tab) to one live connection chosen at random, and
// returns the envelope id. With no connection open it is dropped
// (dispatch_failed, nothing shown to the user).
func (s *Server) SendAppHomeOpened(ev AppHomeOpened) string {
	s.mu.Lock()
	ev.UserID, _ = s.defaultUserLocked(ev.UserID, "")
	ev.Tab = cmp.Or(ev.Tab, "home")
	dmID := ""
	if dm := s.dmChannelLocked(ev.UserID); dm != nil {
		dmID = dm.id
	}
	now := time.Now()
	event := map[string]any{
		"type": "app_home_opened", "user": ev.UserID, "channel": dmID, "tab": ev.Tab,
		"event_ts": s.actionTSLocked(),
	}
	if v, ok := s.currentHomeLocked(ev.UserID); ok && ev.Tab == "home" {
		event["view"] = s.viewObjectLocked(v)
	}
	eventID := "Ev" + strings.ToUpper(s.nextIDLocked())
	payload := map[string]any{
		"token": s.cfg.verificationToken, "team_id": s.cfg.teamID, "api_app_id": cmp.Or(ev.APIAppID, s.cfg.appID),
		"event": event, "type": "event_callback", "event_id": eventID, "event_time": now.Unix(),
		"authorizations": []map[string]any{{
			"enterprise_id": nil, "team_id": s.cfg.teamID, "user_id": s.cfg.botUserID,
			"is_bot": true, "is_enterprise_install": false,
		}},
		"is_ext_shared_channel": false,
		"event_context":         "4-" + randomHex(16),
	}
	id := newUUID()
	env := s.newEnvelopeLocked(id, TypeEventsAPI, payload, false)
	env.alwaysRetry = true
	env.buildFrame()
	env.channel, env.user = dmID, ev.UserID
	s.mu.Unlock()
	s.deliver(env, false)
	return id
}

// OpenHome is a user opening the app's Home tab: it sends app_home_opened
// (see SendAppHomeOpened) and waits for the ack like WaitAck. It returns the
// envelope id and WaitAck's error (ErrDispatchFailed with no connection open).
func (s *Server) OpenHome(ctx context.Context, userID string) (string, error) {
	id := s.SendAppHomeOpened(AppHomeOpened{UserID: userID})
	_, err := s.WaitAck(ctx, id)
	return id, err
}

// HomeAction describes a click on a button in a Home view. Zero fields get
// defaults: UserID DefaultUserID, ViewID the user's current view (an older
// view's id is a click on a stale screen); BlockID, Value and ButtonText come
// from the view's button with ActionID unless set.
type HomeAction struct {
	UserID     string
	UserName   string
	ViewID     string
	ActionID   string
	BlockID    string
	Value      string
	ButtonText string
	APIAppID   string
}

// SendHomeAction delivers an interactive/block_actions envelope for a click in
// a Home view: container {type: "view", view_id}, the view (with its hash),
// and no channel, message or response_url, as Slack sends it. It returns the
// envelope id. See ClickHomeButton for a version that checks the button exists.
func (s *Server) SendHomeAction(a HomeAction) string {
	s.mu.Lock()
	a.UserID, a.UserName = s.defaultUserLocked(a.UserID, a.UserName)
	v := s.viewForActionLocked(a.UserID, a.ViewID)
	for _, b := range v.Buttons() {
		if b.ActionID == a.ActionID && (a.BlockID == "" || a.BlockID == b.BlockID) && (a.Value == "" || a.Value == b.Value) {
			a.BlockID, a.Value, a.ButtonText = cmp.Or(a.BlockID, b.BlockID), cmp.Or(a.Value, b.Value), cmp.Or(a.ButtonText, b.Text)
			break
		}
	}
	payload := map[string]any{
		"type":                  "block_actions",
		"user":                  map[string]any{"id": a.UserID, "username": a.UserName, "name": a.UserName, "team_id": s.cfg.teamID},
		"api_app_id":            cmp.Or(a.APIAppID, s.cfg.appID),
		"token":                 s.cfg.verificationToken,
		"container":             map[string]any{"type": "view", "view_id": v.ID},
		"trigger_id":            s.triggerIDLocked(),
		"team":                  map[string]any{"id": s.cfg.teamID, "domain": s.cfg.teamDomain},
		"enterprise":            nil,
		"is_enterprise_install": false,
		"view":                  s.viewObjectLocked(v),
		"actions": []map[string]any{{
			"action_id": a.ActionID, "block_id": a.BlockID,
			"text":  map[string]any{"type": "plain_text", "text": cmp.Or(a.ButtonText, a.ActionID), "emoji": true},
			"value": a.Value, "type": "button", "action_ts": s.actionTSLocked(),
		}},
	}
	id := newUUID()
	env := s.newEnvelopeLocked(id, TypeInteractive, payload, false)
	env.user = a.UserID
	s.mu.Unlock()
	s.deliver(env, false)
	return id
}

// viewForActionLocked finds the view a click comes from: the user's current
// one, or any published view with that id, or an empty view with that id.
func (s *Server) viewForActionLocked(userID, viewID string) HomeView {
	if viewID == "" {
		v, _ := s.currentHomeLocked(userID)
		return v
	}
	for _, views := range s.homes {
		for _, v := range views {
			if v.ID == viewID {
				return v
			}
		}
	}
	return HomeView{ID: viewID, User: userID}
}

// ClickHomeButton clicks, as the user, the button with actionID (and value,
// when not empty) in the user's current Home view. It fails with
// ErrNoSuchButton when the user has no Home view or it has no such button.
func (s *Server) ClickHomeButton(userID, actionID, value string) (string, error) {
	s.mu.Lock()
	v, ok := s.currentHomeLocked(userID)
	var btn *Button
	for _, b := range v.Buttons() {
		if b.ActionID == actionID && (value == "" || b.Value == value) {
			btn = &b
			break
		}
	}
	s.mu.Unlock()
	if !ok || btn == nil {
		return "", fmt.Errorf("click %s %q on %s's Home: %w", actionID, value, userID, ErrNoSuchButton)
	}
	return s.SendHomeAction(HomeAction{
		UserID: userID, ViewID: v.ID, ActionID: btn.ActionID, BlockID: btn.BlockID, Value: btn.Value, ButtonText: btn.Text,
	}), nil
}
