// The UI's words in English and Chinese. The agent's setting wins; before login, and when the
// agent has none, the browser's language.

const EN = {
  app: "Kefu Hub", skip: "Skip to content", nav: "Main", inbox: "Inbox", agents: "Agents & teams",
  channels: "Channels", bot: "Bot", tryit: "Try it", logout: "Log out", language: "Language",
  presence: "Status", online: "Online", away: "Away", offline: "Offline",
  login_title: "Sign in to the inbox", email: "Email", password: "Password", login: "Sign in",
  login_failed: "Wrong email or password", network: "The hub can't be reached; try again",
  live_on: "Live", live_off: "Reconnecting…",
  tab_pending: "Pending", tab_mine: "Mine", tab_open: "Open", tab_bot: "Bot", tab_resolved: "Resolved",
  tabs: "Conversation status", filters: "Filters", all_channels: "All channels", all_teams: "All teams",
  all_labels: "All labels", search: "Search", search_ph: "Search name or text…", channel: "Channel",
  team: "Team", label: "Label", list: "Conversations", empty_list: "No conversations here",
  more: "Load more", unread: "{n} unread", no_selection: "Choose a conversation on the left",
  status_bot: "Bot", status_pending: "Pending", status_open: "Open", status_snoozed: "Snoozed",
  status_resolved: "Resolved", assignee: "Assignee", unassigned: "Unassigned", nobody: "—",
  take: "Take", resolve: "Resolve", snooze: "Snooze", handback: "Hand back to bot", reopen: "Reopen",
  assign: "Assign", assign_to: "Assign to", snooze_for: "Snooze for", h1: "1 hour", h4: "4 hours",
  tomorrow: "Until tomorrow 9:00", week: "1 week", actions: "Conversation actions",
  labels: "Labels", add_label: "Add a label", remove_label: "Remove label {l}",
  handoff: "Handoff note", reason: "Reason", intent: "Intent", slots: "Details", summary: "Summary",
  note: "Note", priority: "Priority",
  reason_customer_request: "The customer asked for a person", reason_flow: "The flow handed over",
  reason_fallback: "The bot did not understand", reason_flow_failure: "The flow failed",
  history: "Messages", sender_contact: "Customer", sender_bot: "Bot", sender_agent: "Agent",
  sender_system: "System", private_note: "Private note", out_of_scope: "not understood", decision: "bot",
  step: "step", queued: "sending", failed: "not delivered", reply: "Reply to the customer",
  reply_ph: "Type a reply — / for canned responses, Enter sends, Shift+Enter new line",
  note_ph: "Private note for agents — the customer does not see it", send: "Send",
  add_note: "Add note", private: "Private note", canned: "Canned responses",
  suggestions: "Suggestions", articles: "Knowledge", insert: "Insert", no_suggestions: "Nothing matches yet",
  other_channels: "Also writes from", earlier_conversation: "Earlier conversation",
  contact: "Customer", language_of: "Language", created: "Started", first_response: "First answer",
  notify: "Desktop notifications", notify_on: "Notifications on", new_pending: "New conversation waiting: {who}",
  // admin pages
  agents_title: "Agents", name: "Name", role: "Role", teams: "Teams", capacity: "Capacity",
  active: "Active", save: "Save", create: "Create", saved: "Saved", new_agent: "New agent",
  role_admin: "Admin", role_agent: "Agent", role_designer: "Bot designer", teams_hint: "comma-separated",
  open_now: "Open now", teams_title: "Teams", team_name: "Team name", delete: "Delete",
  agents_count: "Agents", pending_count: "Pending", open_count: "Open",
  canned_title: "Canned responses", shortcut: "Shortcut", text: "Text",
  channels_title: "Channels", type: "Type", state: "State", error: "Error", last_error: "Last delivery error",
  ok: "OK", disabled: "Disabled", none: "none",
  bot_title: "Bot", bot_path: "Folder", loaded_at: "Loaded", reloads: "Reloads", retrain: "Reload and retrain",
  retraining: "Training…", retrained: "Bot reloaded", errors_title: "Problems in the bot files",
  no_errors: "No problems: the bot files are valid.", serving_old: "The last good bot keeps serving until these are fixed.",
  flows: "Flows", intents: "Intents", examples: "Examples", knowledge: "Knowledge", file: "File", steps: "Steps",
  triggers: "Triggers", title: "Title", id: "Id",
  try_title: "Try the bot", try_hint: "Talk to the current bot as a customer would. Conversations appear in the inbox under the channel try-it.",
  restart: "New conversation", try_ph: "Say something to the bot…", forbidden: "Your role can't do this",
  confidence: "confidence", image: "Image",
  // dashboard and unrecognized messages
  dashboard: "Dashboard", review: "Unrecognized", date_range: "Date range", from: "From", to: "To",
  presets: "Quick ranges", today: "Today", days7: "7 days", days30: "30 days",
  bad_range: "Choose a start date on or before the end date.", range_too_long: "Choose at most {n} days.", report_window: "Conversations started {since} – {until}",
  no_data: "Nothing in this range", headline: "Headline figures", conversations: "Conversations",
  conversations_n: "Conversations: {n}", messages: "Messages", messages_in: "Messages in", messages_out: "Messages out",
  containment: "Bot containment", escalation: "Escalation rate", escalated: "Escalated",
  first_response_median: "First response (median)", resolution_median: "Resolution (median)", p90: "p90",
  measured_n: "{n} measured", csat: "Satisfaction (CSAT)", ratings_n: "{n} ratings",
  escalation_reasons: "Escalation reasons", per_channel: "Per channel", top_intents: "Top intents",
  per_intent: "Per intent", flow_funnels: "Flow funnels", fell_back: "Fell back", handed_off: "Handed off",
  flow_steps: "Flow steps", flow: "Flow", step_col: "Step", location: "Location in the file",
  unrecognized: "Top unrecognized messages", times: "Times", last_seen: "Last seen",
  label_them: "Label them", export_csv: "Export CSV", in_seconds: "{what}, seconds",
  dur_s: "{n}s", dur_m: "{n}m", dur_h: "{n}h", dur_d: "{n}d",
  reason_knowledge_unhelpful: "The answer did not help", reason_assigned: "An agent assigned it",
  reason_agent_replied: "An agent replied", reason_agent: "An agent took it",
  reason_agent_message: "An agent wrote", reason_unknown: "Unknown",
  review_title: "Unrecognized messages",
  review_hint: "Label what customers said with the intent they meant. The labeled examples join the bot's training data the next time someone presses “Reload and retrain” on the",
  review_hint_link: "Bot page", to_label: "To label", labeled: "Labeled examples",
  review_missing: "This hub does not offer the review API yet.", review_empty: "Nothing left to label: every unrecognized message has an intent.",
  labeled_empty: "No labeled examples yet.", suggested: "Suggested", intent_for: "Intent for “{text}”",
  choose_intent: "Choose an intent", label_it: "Label", labeled_as: "Labeled as {intent}",
  use_suggestion: "Use {intent} for “{text}”", labeled_by: "Labeled by", labeled_at: "Labeled",
};

const ZH = {
  app: "客服中心", skip: "跳到正文", nav: "主菜单", inbox: "收件箱", agents: "客服与团队",
  channels: "渠道", bot: "机器人", tryit: "试聊", logout: "退出登录", language: "语言",
  presence: "状态", online: "在线", away: "离开", offline: "离线",
  login_title: "登录收件箱", email: "邮箱", password: "密码", login: "登录",
  login_failed: "邮箱或密码错误", network: "无法连接到服务器，请重试",
  live_on: "实时", live_off: "正在重连…",
  tab_pending: "待接入", tab_mine: "我的", tab_open: "处理中", tab_bot: "机器人", tab_resolved: "已解决",
  tabs: "会话状态", filters: "筛选", all_channels: "全部渠道", all_teams: "全部团队",
  all_labels: "全部标签", search: "搜索", search_ph: "搜索姓名或内容…", channel: "渠道",
  team: "团队", label: "标签", list: "会话列表", empty_list: "这里没有会话",
  more: "加载更多", unread: "{n} 条未读", no_selection: "请在左侧选择一个会话",
  status_bot: "机器人", status_pending: "待接入", status_open: "处理中", status_snoozed: "已暂缓",
  status_resolved: "已解决", assignee: "负责人", unassigned: "未分配", nobody: "—",
  take: "接入", resolve: "解决", snooze: "暂缓", handback: "交回机器人", reopen: "重新打开",
  assign: "分配", assign_to: "分配给", snooze_for: "暂缓时长", h1: "1 小时", h4: "4 小时",
  tomorrow: "到明天 9:00", week: "1 周", actions: "会话操作",
  labels: "标签", add_label: "添加标签", remove_label: "删除标签 {l}",
  handoff: "转人工说明", reason: "原因", intent: "意图", slots: "已收集信息", summary: "摘要",
  note: "备注", priority: "优先级",
  reason_customer_request: "客户要求转人工", reason_flow: "流程转人工",
  reason_fallback: "机器人未能理解", reason_flow_failure: "流程出错",
  history: "消息", sender_contact: "客户", sender_bot: "机器人", sender_agent: "客服",
  sender_system: "系统", private_note: "内部备注", out_of_scope: "未识别", decision: "机器人",
  step: "步骤", queued: "发送中", failed: "发送失败", reply: "回复客户",
  reply_ph: "输入回复 — 输入 / 使用快捷回复，Enter 发送，Shift+Enter 换行",
  note_ph: "内部备注，客户看不到", send: "发送",
  add_note: "添加备注", private: "内部备注", canned: "快捷回复",
  suggestions: "推荐", articles: "知识库", insert: "插入", no_suggestions: "暂无匹配",
  other_channels: "其他渠道", earlier_conversation: "之前的会话",
  contact: "客户", language_of: "语言", created: "开始时间", first_response: "首次响应",
  notify: "桌面通知", notify_on: "已开启通知", new_pending: "新会话等待接入：{who}",
  agents_title: "客服", name: "姓名", role: "角色", teams: "团队", capacity: "接待上限",
  active: "启用", save: "保存", create: "创建", saved: "已保存", new_agent: "新建客服",
  role_admin: "管理员", role_agent: "客服", role_designer: "机器人设计师", teams_hint: "用逗号分隔",
  open_now: "当前处理中", teams_title: "团队", team_name: "团队名称", delete: "删除",
  agents_count: "客服数", pending_count: "待接入", open_count: "处理中",
  canned_title: "快捷回复", shortcut: "快捷码", text: "内容",
  channels_title: "渠道", type: "类型", state: "状态", error: "错误", last_error: "最近的发送错误",
  ok: "正常", disabled: "未启用", none: "无",
  bot_title: "机器人", bot_path: "目录", loaded_at: "加载时间", reloads: "重新加载次数", retrain: "重新加载并训练",
  retraining: "训练中…", retrained: "机器人已重新加载", errors_title: "机器人文件中的问题",
  no_errors: "没有问题：机器人文件有效。", serving_old: "修复之前，上一个有效的机器人继续服务。",
  flows: "流程", intents: "意图", examples: "例句数", knowledge: "知识库", file: "文件", steps: "步骤数",
  triggers: "触发意图", title: "标题", id: "编号",
  try_title: "试聊机器人", try_hint: "像客户一样与当前机器人对话。会话会以 try-it 渠道出现在收件箱中。",
  restart: "新会话", try_ph: "对机器人说点什么…", forbidden: "你的角色不能执行此操作",
  confidence: "置信度", image: "图片",
  dashboard: "数据看板", review: "未识别消息", date_range: "日期范围", from: "开始日期", to: "结束日期",
  presets: "快捷范围", today: "今天", days7: "近 7 天", days30: "近 30 天",
  bad_range: "开始日期不能晚于结束日期。", range_too_long: "最多选择 {n} 天。", report_window: "开始于 {since} – {until} 的会话",
  no_data: "该范围内没有数据", headline: "核心指标", conversations: "会话数",
  conversations_n: "{n} 个会话", messages: "消息数", messages_in: "收到消息", messages_out: "发出消息",
  containment: "机器人独立解决率", escalation: "转人工率", escalated: "转人工",
  first_response_median: "首次响应（中位数）", resolution_median: "解决时长（中位数）", p90: "p90",
  measured_n: "共 {n} 个", csat: "满意度（CSAT）", ratings_n: "{n} 个评分",
  escalation_reasons: "转人工原因", per_channel: "按渠道", top_intents: "热门意图",
  per_intent: "按意图", flow_funnels: "流程漏斗", fell_back: "未识别", handed_off: "转人工",
  flow_steps: "流程步骤", flow: "流程", step_col: "步骤", location: "文件中的位置",
  unrecognized: "未识别的热门消息", times: "次数", last_seen: "最近一次",
  label_them: "去标注", export_csv: "导出 CSV", in_seconds: "{what}（秒）",
  dur_s: "{n}秒", dur_m: "{n}分", dur_h: "{n}小时", dur_d: "{n}天",
  reason_knowledge_unhelpful: "答案没有帮助", reason_assigned: "客服分配", reason_agent_replied: "客服回复",
  reason_agent: "客服接入", reason_agent_message: "客服发言", reason_unknown: "未知",
  review_title: "未识别消息",
  review_hint: "为客户的话标注他们想表达的意图。下次有人在以下页面点击“重新加载并训练”时，标注的例句会加入机器人的训练数据：",
  review_hint_link: "机器人页面", to_label: "待标注", labeled: "已标注的例句",
  review_missing: "此服务器尚未提供标注接口。", review_empty: "没有待标注的消息：每条未识别消息都已有意图。",
  labeled_empty: "还没有标注的例句。", suggested: "推荐", intent_for: "“{text}”的意图",
  choose_intent: "选择意图", label_it: "标注", labeled_as: "已标注为 {intent}",
  use_suggestion: "将“{text}”标注为 {intent}", labeled_by: "标注人", labeled_at: "标注时间",
};

const WORDS = { en: EN, zh: ZH };
let current = "en";

export function browserLanguage() {
  return /^zh/i.test(navigator.language || "") ? "zh" : "en";
}

export function setLanguage(language) {
  current = WORDS[language] ? language : "en";
  document.documentElement.lang = current === "zh" ? "zh-CN" : "en";
}

export function language() {
  return current;
}

export function t(key, values) {
  let text = WORDS[current][key] ?? EN[key] ?? key;
  for (const [k, v] of Object.entries(values || {})) text = text.replace(`{${k}}`, v);
  return text;
}

export function when(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  const today = new Date().toDateString() === date.toDateString();
  return new Intl.DateTimeFormat(current === "zh" ? "zh-CN" : "en", today
    ? { hour: "2-digit", minute: "2-digit" }
    : { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" }).format(date);
}
