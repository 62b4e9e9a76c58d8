-- Argo CD health of a backup.liferay.cloud request (BackupRequest and RestoreRequest share it),
-- from status.state: Pending and InProgress are Progressing, Succeeded is Healthy, Failed is
-- Degraded with the controller's reason and message; no status yet is Progressing.
-- Argo CD runs this with only Lua's base, table and package libraries (no string or math).
local hs = {}

local function percent(done, total)
  if done == nil or total == nil or total <= 0 then
    return nil
  end
  local p = done * 100 / total
  return p - p % 1
end

local function progressMessage(status)
  local p = status.progress
  local msg = status.message or "in progress"
  if p == nil then
    return msg
  end
  local parts = {}
  if p.phase ~= nil then
    table.insert(parts, p.phase)
  end
  if p.objectsDone ~= nil then
    if p.objectsTotal ~= nil then
      table.insert(parts, p.objectsDone .. "/" .. p.objectsTotal .. " objects")
    else
      table.insert(parts, p.objectsDone .. " objects")
    end
  end
  local pct = percent(p.bytesDone, p.bytesTotal) or percent(p.objectsDone, p.objectsTotal)
  if pct ~= nil then
    table.insert(parts, pct .. "%")
  end
  if #parts == 0 then
    return msg
  end
  return msg .. " (" .. table.concat(parts, ", ") .. ")"
end

if obj.status == nil or obj.status.state == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the lc2-backup controller to accept the request"
  return hs
end

local status = obj.status
local state = status.state

if state == "Pending" then
  hs.status = "Progressing"
  if status.reason ~= nil then
    hs.message = status.reason .. ": " .. (status.message or "pending")
  else
    hs.message = status.message or "Pending"
  end
elseif state == "InProgress" then
  hs.status = "Progressing"
  hs.message = progressMessage(status)
elseif state == "Succeeded" then
  hs.status = "Healthy"
  hs.message = status.message or "Succeeded"
elseif state == "Failed" then
  hs.status = "Degraded"
  if status.reason ~= nil then
    hs.message = status.reason .. ": " .. (status.message or "failed")
  else
    hs.message = status.message or "Failed"
  end
else
  hs.status = "Unknown"
  hs.message = "Unknown state " .. tostring(state)
end
return hs
