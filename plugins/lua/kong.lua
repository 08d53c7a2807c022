-- kong.lua: runs a Kong plugin (handler.lua, schema.lua, its own modules)
-- on the weir PDK. It is the script of a lua plugin whose config sets
-- kong_plugin; README.md lists what of Kong's PDK it covers.

local H = _G["weir kong"]
_G["weir kong"] = nil -- the Go helpers are reachable from here only

local weir, type, pairs, ipairs, tostring, tonumber, error, pcall, select, setmetatable, rawget =
  weir, type, pairs, ipairs, tostring, tonumber, error, pcall, select, setmetatable, rawget
local W = weir
local NULL = H.null
local NAME = H.name

local function unsupported(fn)
  return function() error(fn .. " is not supported by weir's Kong PDK (see the lua plugin README)", 2) end
end

-- per-request tables, copied between phases: of this plugin (kept in
-- weir.ctx.shared), or of all the lua plugins of the request (H.request)
local function sub(s, name)
  local t = s[name]
  if t == nil then
    t = {}
    s[name] = t
  end
  return t
end
local function bucket(name) return sub(W.ctx.shared, name) end
local function request_bucket(name) return sub(H.request(), name) end

-- the body of the current body_filter call (ngx.arg[1], ngx.arg[2])
local arg = H.keep({})

---------------------------------------------------------------- cjson
local cjson = {null = NULL, empty_array = setmetatable({}, {__metatable = false})}
cjson.encode = H.json_enc
cjson.decode = H.json_dec
function cjson.new() return cjson end
function cjson.encode_empty_table_as_object() end
function cjson.decode_array_with_array_mt() end
function cjson.encode_escape_forward_slash() end
local cjson_safe = {null = NULL, empty_array = cjson.empty_array}
function cjson_safe.encode(v)
  local ok, r = pcall(H.json_enc, v)
  if ok then return r end
  return nil, r
end
function cjson_safe.decode(s)
  local ok, r = pcall(H.json_dec, s)
  if ok then return r end
  return nil, r
end
function cjson_safe.new() return cjson_safe end
cjson_safe.encode_empty_table_as_object = cjson.encode_empty_table_as_object
cjson_safe.decode_array_with_array_mt = cjson.decode_array_with_array_mt
cjson_safe.encode_escape_forward_slash = cjson.encode_escape_forward_slash

---------------------------------------------------------------- ngx
local ngx = {
  null = NULL,
  OK = 0, ERROR = -1, AGAIN = -2, DONE = -4, DECLINED = -5,
  STDERR = 0, EMERG = 1, ALERT = 2, CRIT = 3, ERR = 4, WARN = 5, NOTICE = 6, INFO = 7, DEBUG = 8,
  HTTP_CONTINUE = 100, HTTP_SWITCHING_PROTOCOLS = 101,
  HTTP_OK = 200, HTTP_CREATED = 201, HTTP_ACCEPTED = 202, HTTP_NO_CONTENT = 204, HTTP_PARTIAL_CONTENT = 206,
  HTTP_SPECIAL_RESPONSE = 300, HTTP_MOVED_PERMANENTLY = 301, HTTP_MOVED_TEMPORARILY = 302, HTTP_SEE_OTHER = 303,
  HTTP_NOT_MODIFIED = 304, HTTP_TEMPORARY_REDIRECT = 307, HTTP_PERMANENT_REDIRECT = 308,
  HTTP_BAD_REQUEST = 400, HTTP_UNAUTHORIZED = 401, HTTP_PAYMENT_REQUIRED = 402, HTTP_FORBIDDEN = 403,
  HTTP_NOT_FOUND = 404, HTTP_NOT_ALLOWED = 405, HTTP_NOT_ACCEPTABLE = 406, HTTP_REQUEST_TIMEOUT = 408,
  HTTP_CONFLICT = 409, HTTP_GONE = 410, HTTP_REQUEST_ENTITY_TOO_LARGE = 413, HTTP_UNSUPPORTED_MEDIA_TYPE = 415,
  HTTP_TOO_MANY_REQUESTS = 429, HTTP_CLOSE = 444, HTTP_INTERNAL_SERVER_ERROR = 500,
  HTTP_METHOD_NOT_IMPLEMENTED = 501, HTTP_BAD_GATEWAY = 502, HTTP_SERVICE_UNAVAILABLE = 503,
  HTTP_GATEWAY_TIMEOUT = 504,
  HTTP_GET = "GET", HTTP_HEAD = "HEAD", HTTP_PUT = "PUT", HTTP_POST = "POST", HTTP_DELETE = "DELETE",
  HTTP_OPTIONS = "OPTIONS", HTTP_PATCH = "PATCH", HTTP_TRACE = "TRACE",
  arg = arg,
}
ngx.now = H.now
function ngx.time() return math.floor(H.now()) end
function ngx.update_time() end
ngx.worker = {
  pid = H.pid,
  id = function() return 0 end,
  count = function() return 1 end,
  exiting = function() return false end,
}
function ngx.get_phase() return W.ctx.phase end
ngx.encode_base64 = H.b64
ngx.decode_base64 = H.unb64
ngx.md5 = H.md5
ngx.md5_bin = H.md5_bin
ngx.sha1_bin = H.sha1_bin
ngx.hmac_sha1 = H.hmac_sha1
ngx.escape_uri = H.escape
ngx.unescape_uri = H.unescape
function ngx.encode_args(t)
  local out = {}
  for k, v in pairs(t) do
    if v == true then
      out[#out + 1] = H.escape(tostring(k))
    elseif type(v) == "table" then
      for _, x in ipairs(v) do out[#out + 1] = H.escape(tostring(k)) .. "=" .. H.escape(tostring(x)) end
    elseif v ~= false then
      out[#out + 1] = H.escape(tostring(k)) .. "=" .. H.escape(tostring(v))
    end
  end
  table.sort(out)
  return table.concat(out, "&")
end

local levels = {[1] = "err", [2] = "err", [3] = "err", [4] = "err", [5] = "warn", [6] = "info", [7] = "info", [8] = "info", [0] = "err"}
function ngx.log(level, ...)
  W.log[levels[level] or "info"](...)
end
function ngx.say(...) W.response.exit(200, table.concat({...}) .. "\n") end
function ngx.exit(status)
  if status >= 200 then W.response.exit(status) end
end

ngx.re = {}
function ngx.re.match(s, re, opts, ctx) return H.re("match", s, re, opts, ctx and ctx.pos) end
function ngx.re.find(s, re, opts, ctx)
  local from, to = H.re("find", s, re, opts, ctx and ctx.pos)
  return from, to
end
function ngx.re.gmatch(s, re, opts) return H.re("gmatch", s, re, opts) end
function ngx.re.gsub(s, re, repl, opts) return H.re("gsub", s, re, opts, repl) end
function ngx.re.sub(s, re, repl, opts) return H.re("sub", s, re, opts, repl) end

ngx.req = {
  get_headers = function() return W.request.get_headers() end,
  get_method = function() return W.request.get_method() end,
  set_header = function(k, v) W.request.set_header(k, v) end,
  clear_header = function(k) W.request.clear_header(k) end,
  get_uri_args = function() return H.query() end,
  read_body = function() end,
  get_body_data = function() return W.request.get_body() end,
  set_body_data = function(b) W.request.set_body(b) end,
  set_uri = function(p) W.request.set_path(p) end,
  start_time = function() return H.now() end,
}

-- ngx.header["Name"] = value sets a response header
ngx.header = H.keep(setmetatable({}, {
  __index = function(_, k) return W.response.get_header((k:gsub("_", "-"))) end,
  __newindex = function(_, k, v)
    k = k:gsub("_", "-")
    -- ngx.header.content_length = nil, as plugins that change the body
    -- do: the gateway sets it from the body actually sent
    if v == nil and k:lower() == "content-length" then return end
    if v == nil then W.response.clear_header(k) else W.response.set_header(k, tostring(v)) end
  end,
  __metatable = false,
}))

-- ngx.var: the variables Weir knows
local vars = {
  request_method = function() return W.request.get_method() end,
  uri = function() return W.request.get_path() end,
  request_uri = function()
    local q = H.raw_query()
    if q ~= "" then return W.request.get_path() .. "?" .. q end
    return W.request.get_path()
  end,
  args = function() local q = H.raw_query() if q ~= "" then return q end end,
  query_string = function() local q = H.raw_query() if q ~= "" then return q end end,
  host = function() return H.host() end,
  scheme = function() return H.scheme() end,
  server_port = function() return tostring(H.port()) end,
  remote_addr = function() return W.ctx.client_ip end,
  binary_remote_addr = function() return W.ctx.client_ip end,
  request_id = function() return W.ctx.request_id end,
  status = function() local s = W.response.get_status() return s and tostring(s) end,
  server_addr = function() return H.conn("server_addr") end,
  connection = function() return H.conn("connection") end,
  connection_requests = function() return H.conn("connection_requests") end,
}
ngx.var = H.keep(setmetatable({}, {
  __index = function(_, k)
    local f = vars[k]
    if f then return f() end
    if k:sub(1, 5) == "http_" then return W.request.get_header((k:sub(6):gsub("_", "-"))) end
    if k:sub(1, 4) == "arg_" then return W.request.get_query_arg(k:sub(5)) end
    return nil
  end,
  __newindex = function(_, k) error("ngx.var." .. tostring(k) .. " cannot be set in weir", 2) end,
  __metatable = false,
}))

-- ngx.ctx: a per-request table
setmetatable(ngx, {__index = function(_, k) if k == "ctx" then return request_bucket("ngx") end end})

---------------------------------------------------------------- kong
local kong = {
  version = "3.4.0",
  version_num = 3004000,
  configuration = {},
  meta = {_NAME = "kong", _VERSION = "3.4.0", version = "3.4.0", _SERVER_TOKENS = "weir"},
}

local req = {}
kong.request = req
req.get_header = H.req_get_header
function req.get_headers(max) return W.request.get_headers() end
function req.get_method() return W.request.get_method() end
function req.get_path() return W.request.get_path() end
function req.get_raw_path() return W.request.get_path() end
function req.get_path_with_query()
  local q = H.raw_query()
  if q ~= "" then return W.request.get_path() .. "?" .. q end
  return W.request.get_path()
end
function req.get_query_arg(name)
  local v = W.request.get_query_arg(name)
  if v == "" then return true end
  return v
end
function req.get_query(max) return H.query() end
function req.get_raw_query() return H.raw_query() end
req.get_scheme = function() return H.scheme() end
req.get_host = function() return H.host() end
req.get_port = function() return H.port() end
req.get_forwarded_scheme = req.get_scheme
req.get_forwarded_host = req.get_host
req.get_forwarded_port = req.get_port
function req.get_forwarded_path() return W.request.get_path() end
function req.get_forwarded_prefix() return nil end
function req.get_http_version() return 1.1 end
function req.get_raw_body() return W.request.get_body() end
function req.get_body(mimetype)
  local ct = mimetype or W.request.get_header("Content-Type") or ""
  local raw = W.request.get_body()
  if raw == nil then return nil, "request body is streamed", ct end
  if ct:find("application/json", 1, true) then
    local v, err = cjson_safe.decode(raw)
    if v == nil then return nil, "failed to decode json: " .. tostring(err), ct end
    return v, nil, ct
  end
  if ct:find("application/x-www-form-urlencoded", 1, true) then
    local t = {}
    for pair in raw:gmatch("[^&]+") do
      local k, v = pair:match("^([^=]*)=?(.*)$")
      t[H.unescape((k:gsub("%+", " ")))] = H.unescape((v:gsub("%+", " ")))
    end
    return t, nil, ct
  end
  return nil, "unsupported content type '" .. ct .. "'", ct
end
function req.get_start_time() return math.floor(H.now() * 1000) end
req.get_uri_captures = function()
  return {unnamed = {}, named = setmetatable({}, {__index = function(_, k) return W.ctx.param(k) end})}
end

local resp = {}
kong.response = resp
function resp.get_status() return W.response.get_status() end
function resp.get_header(name) return W.response.get_header(name) end
function resp.get_headers(max) return H.resp_hdrs() end
function resp.get_source()
  if H.request().exited then return "exit" end
  if W.ctx.phase == "access" then return nil end
  return "service"
end
function resp.set_status(s) W.response.set_status(s) end
resp.set_header = H.resp_set_header
resp.add_header = resp.set_header
function resp.clear_header(k)
  -- plugins that change the body clear Content-Length; the gateway sets it
  -- from the body actually sent
  if k:lower() == "content-length" then return end
  W.response.clear_header(k)
end
function resp.set_headers(t)
  for k, v in pairs(t) do
    if type(v) == "table" then v = v[#v] end
    W.response.set_header(k, tostring(v))
  end
end
function resp.exit(status, body, headers)
  H.request().exited = true
  if type(body) == "table" then
    local h = {}
    if headers then for k, v in pairs(headers) do h[k] = v end end
    local ct = false
    for k in pairs(h) do if k:lower() == "content-type" then ct = true end end
    if not ct then h["Content-Type"] = "application/json; charset=utf-8" end
    return W.response.exit(status, cjson.encode(body), h)
  end
  return W.response.exit(status, body, headers)
end
function resp.error(status, message, headers)
  local default = {
    [400] = "Bad request", [401] = "Unauthorized", [403] = "Forbidden", [404] = "Not found",
    [405] = "Method not allowed", [429] = "API rate limit exceeded",
    [500] = "An unexpected error occurred", [502] = "An invalid response was received from the upstream server",
    [503] = "The upstream server is currently unavailable", [504] = "The upstream server is timing out",
  }
  local msg = message
  if type(msg) ~= "table" then msg = {message = msg or default[status] or "An unexpected error occurred"} end
  return resp.exit(status, msg, headers)
end
function resp.get_raw_body()
  if W.ctx.phase ~= "body_filter" then error("kong.response.get_raw_body is only available in body_filter", 2) end
  return arg[1]
end
function resp.set_raw_body(b)
  if W.ctx.phase ~= "body_filter" then error("kong.response.set_raw_body is only available in body_filter", 2) end
  arg[1] = b
end

kong.service = {
  set_upstream = unsupported("kong.service.set_upstream"),
  set_target = unsupported("kong.service.set_target"),
  set_tls_verify = unsupported("kong.service.set_tls_verify"),
}
local sreq = {}
kong.service.request = sreq
sreq.set_header = H.svc_set_header
sreq.add_header = sreq.set_header
function sreq.clear_header(k) W.request.clear_header(k) end
function sreq.set_headers(t)
  for k, v in pairs(t) do
    if type(v) == "table" then v = v[#v] end
    W.request.set_header(k, tostring(v))
  end
end
function sreq.set_path(p) W.request.set_path(p) end
function sreq.set_raw_query(q)
  for k in pairs(H.query()) do W.request.clear_query_arg(k) end
  for pair in q:gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    W.request.set_query_arg(H.unescape(k), H.unescape(v))
  end
end
function sreq.set_query(t)
  for k in pairs(H.query()) do W.request.clear_query_arg(k) end
  for k, v in pairs(t) do
    if type(v) == "table" then v = v[#v] end
    if v == true then v = "" end
    W.request.set_query_arg(k, tostring(v))
  end
end
sreq.set_method = H.set_method
function sreq.set_raw_body(b) W.request.set_body(b) end
function sreq.set_body(t, mimetype)
  local ct = mimetype or W.request.get_header("Content-Type") or "application/json"
  if ct:find("json", 1, true) then
    W.request.set_body(cjson.encode(t))
  else
    W.request.set_body(ngx.encode_args(t))
  end
  W.request.set_header("Content-Type", ct)
end
function sreq.enable_buffering() end
sreq.set_scheme = unsupported("kong.service.request.set_scheme")

kong.service.response = {
  get_status = function() return W.response.get_status() end,
  get_header = function(k) return W.response.get_header(k) end,
  get_headers = function() return H.resp_hdrs() end,
  get_raw_body = function() return resp.get_raw_body() end,
  get_body = function()
    local b = resp.get_raw_body()
    return b and cjson_safe.decode(b)
  end,
}

kong.client = {
  get_ip = function() return W.ctx.client_ip end,
  get_forwarded_ip = function() return W.ctx.client_ip end,
  get_port = function() return nil end,
  get_forwarded_port = function() return nil end,
  get_consumer = function()
    local c = W.ctx.consumer
    if c then return {id = c, username = c} end
  end,
  get_credential = function() return nil end,
  get_protocol = function() return H.scheme() end,
  authenticate = unsupported("kong.client.authenticate"),
  load_consumer = unsupported("kong.client.load_consumer"),
}

kong.router = {
  get_route = function() return {name = W.ctx.route} end,
  get_service = function() return {name = W.ctx.service} end,
}

kong.node = {
  get_id = H.node_id,
  get_hostname = H.hostname,
}

kong.tools = {uuid = H.uuid, utils = {uuid = H.uuid}}

kong.ctx = setmetatable({}, {__index = function(_, k)
  if k == "shared" then return request_bucket("shared") end
  if k == "plugin" then return bucket("kong_plugin") end
end})

local log = {}
kong.log = log
log.debug = function(...) W.log.info(...) end
log.info = function(...) W.log.info(...) end
log.notice = function(...) W.log.info(...) end
log.warn = function(...) W.log.warn(...) end
log.err = function(...) W.log.err(...) end
log.crit = log.err
log.alert = log.err
log.emerg = log.err
log.inspect = H.keep(setmetatable({}, {__call = function(_, ...) W.log.info(H.inspect(...)) end, __metatable = false}))
function log.set_serialize_value() end
log.serialize = unsupported("kong.log.serialize")

---------------------------------------------------------------- schema
local typedefs = setmetatable({
  no_consumer = {type = "foreign", eq = NULL},
  no_route = {type = "foreign", eq = NULL},
  no_service = {type = "foreign", eq = NULL},
  protocols_http = {type = "set", elements = {type = "string"}, default = {"grpc", "grpcs", "http", "https"}},
  protocols = {type = "set", elements = {type = "string"}, default = {"grpc", "grpcs", "http", "https"}},
  header_name = {type = "string"},
  port = {type = "integer", between = {0, 65535}},
  timeout = {type = "integer", between = {0, 2147483646}},
  uuid = {type = "string"},
  host = {type = "string"},
  path = {type = "string"},
  url = {type = "string"},
  ip = {type = "string"},
  cidr = {type = "string"},
  name = {type = "string"},
  tags = {type = "set", elements = {type = "string"}},
}, {__index = function() return {type = "string"} end})

local function field_list(fields)
  local out = {}
  for _, f in ipairs(fields or {}) do
    local name, def = next(f)
    out[#out + 1] = {name = name, def = def}
  end
  return out
end

local function check_value(path, def, v)
  local t = def.type
  if t == "string" then
    if type(v) ~= "string" then return path .. ": expected a string" end
    if def.len_min and #v < def.len_min then return path .. ": length must be at least " .. def.len_min end
    if def.len_max and #v > def.len_max then return path .. ": length must be at most " .. def.len_max end
    if def.match and not v:match(def.match) then return path .. ": invalid value: " .. v end
  elseif t == "integer" then
    if type(v) ~= "number" or v % 1 ~= 0 then return path .. ": expected an integer" end
  elseif t == "number" then
    if type(v) ~= "number" then return path .. ": expected a number" end
  elseif t == "boolean" then
    if type(v) ~= "boolean" then return path .. ": expected a boolean" end
  elseif t == "array" or t == "set" then
    if type(v) ~= "table" then return path .. ": expected an array" end
    for i, x in ipairs(v) do
      local e = def.elements and check_value(path .. "[" .. i .. "]", def.elements, x)
      if e then return e end
    end
  elseif t == "map" then
    if type(v) ~= "table" then return path .. ": expected a map" end
  elseif t == "record" then
    if type(v) ~= "table" then return path .. ": expected a record" end
  end
  if def.between and (v < def.between[1] or v > def.between[2]) then
    return path .. ": value should be between " .. def.between[1] .. " and " .. def.between[2]
  end
  if def.one_of then
    local ok = false
    for _, x in ipairs(def.one_of) do if x == v then ok = true end end
    if not ok then
      local names = {}
      for _, x in ipairs(def.one_of) do names[#names + 1] = tostring(x) end
      return path .. ": expected one of: " .. table.concat(names, ", ")
    end
  end
  if def.gt and not (v > def.gt) then return path .. ": value must be greater than " .. def.gt end
end

local function copy(v)
  if type(v) ~= "table" then return v end
  local t = {}
  for k, x in pairs(v) do t[k] = copy(x) end
  return t
end

-- apply fills the defaults of a record's fields into conf and checks it;
-- absent fields without a default are ngx.null in the copy the validators
-- see, and nil in what the handler gets (as Kong's DAO returns them).
local function apply(path, fields, conf, nulls)
  for k in pairs(conf) do
    local known = false
    for _, f in ipairs(fields) do if f.name == k then known = true end end
    if not known then error(path .. k .. ": unknown field", 0) end
  end
  for _, f in ipairs(fields) do
    local def, v = f.def, conf[f.name]
    if v == nil and def.default ~= nil and def.default ~= NULL then
      v = copy(def.default)
      conf[f.name] = v
    end
    if v == nil and def.type == "record" and def.fields then
      v = {}
      conf[f.name] = v
    end
    if v == nil then
      if def.required then error(path .. f.name .. ": required field missing", 0) end
      nulls[f.name] = NULL
    else
      local e = check_value(path .. f.name, def, v)
      if e then error(e, 0) end
      if def.type == "record" and def.fields then
        local sub = {}
        apply(path .. f.name .. ".", field_list(def.fields), v, sub)
        nulls[f.name] = setmetatable(sub, {__index = v})
      else
        nulls[f.name] = v
      end
      if def.custom_validator then
        local ok, err = def.custom_validator(v)
        if not ok then error(path .. f.name .. ": " .. tostring(err), 0) end
      end
    end
  end
end

---------------------------------------------------------------- require
local loaded = {
  cjson = cjson,
  ["cjson.safe"] = cjson_safe,
  ["kong.db.schema.typedefs"] = typedefs,
  ["kong.meta"] = kong.meta,
  ["kong.tools.utils"] = {uuid = H.uuid},
  ["kong.tools.uuid"] = {uuid = H.uuid},
}
-- kong.plugins.base_plugin (Kong < 3): a class whose methods do nothing
local Base = {}
do
  Base.__index = Base
  function Base:extend()
    local cls = setmetatable({}, {__index = self})
    cls.__index = cls
    cls.super = self
    return cls
  end
  function Base:new(name) self._name = name end
  for _, m in ipairs({"init_worker", "certificate", "rewrite", "access", "header_filter", "body_filter", "log"}) do
    Base[m] = function() end
  end
  loaded["kong.plugins.base_plugin"] = Base
end

local function require(name)
  local m = loaded[name]
  if m ~= nil then return m end
  local loader = H.module(name)
  if loader == nil then
    error("module '" .. tostring(name) .. "' not found: weir provides cjson, cjson.safe, kong.db.schema.typedefs, kong.meta, kong.plugins.base_plugin and the modules of the plugin's folder", 2)
  end
  loaded[name] = true -- a cycle sees true, as in Lua's require
  local r = loader(name)
  if r == nil then r = true end
  loaded[name] = r
  return r
end

---------------------------------------------------------------- globals
_G.require = require
_G.kong = kong
_G.ngx = ngx
_G.cjson = cjson

---------------------------------------------------------------- the plugin
local handler = require("kong.plugins." .. NAME .. ".handler")
if type(handler) ~= "table" then
  error("handler.lua must return the plugin's handler table, got a " .. type(handler), 0)
end
if handler.super and type(handler.new) == "function" then
  handler:new() -- a kong.plugins.base_plugin class (Kong < 3)
end
local plugin_conf = copy(conf)
local ok_schema, schema = pcall(require, "kong.plugins." .. NAME .. ".schema")
if ok_schema and type(schema) == "table" then
  local cfg_def
  for _, f in ipairs(field_list(schema.fields)) do
    if f.name == "config" then cfg_def = f.def end
  end
  if cfg_def and cfg_def.fields then
    local nulls = {}
    apply("config.", field_list(cfg_def.fields), plugin_conf, nulls)
    if cfg_def.custom_validator then
      local ok, err = cfg_def.custom_validator(setmetatable(nulls, {__index = plugin_conf}))
      if not ok then error("config: " .. tostring(err), 0) end
    end
  end
elseif not ok_schema and not tostring(schema):find("not found", 1, true) then
  error(schema, 0)
end

if handler.init_worker then handler:init_worker() end

-- The order of the lua plugins of a route (chain.go); and conf, which the
-- VM guards against writes from a request (conf.go), is the handler's.
PRIORITY = tonumber(handler.PRIORITY) or 0
conf = plugin_conf

-- Go calls access, header_filter and log with (handler, plugin_conf)
-- (H.bind), so a handler's methods are the phase functions themselves.
-- The do-nothing methods of a base_plugin class are left out: no phase
-- runs for them.
H.bind(handler, plugin_conf)
local function method(name)
  local m = handler[name]
  if m ~= nil and m ~= Base[name] then return m end
end
if method("rewrite") then
  local rewrite, acc = method("rewrite"), method("access")
  function access(self, c)
    rewrite(self, c)
    if acc then acc(self, c) end
  end
else
  access = method("access")
end
header_filter = method("header_filter")
if method("body_filter") then
  function body_filter(body)
    arg[1], arg[2] = body, true
    handler:body_filter(plugin_conf)
    local out = arg[1]
    arg[1], arg[2] = nil, nil
    if out == body then return nil end
    return out or ""
  end
end
-- _G: `log` alone is the local kong.log table here
_G.log = method("log")
