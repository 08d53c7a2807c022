function access()
  local a = 1
  x x
end
