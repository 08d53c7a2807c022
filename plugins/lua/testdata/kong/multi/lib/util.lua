local _M = {}

function _M.signature(secret, path)
  return ngx.encode_base64(ngx.md5(secret .. ":" .. path))
end

function _M.module_name()
  return "util"
end

return _M
