-- The routing engine: sends each stable series where the rules of lua/rules.lua say.
--
-- Runs in Orthanc's own Lua (orthanc.json "LuaScripts", after rules.lua). Each send is an
-- asynchronous Orthanc job (DicomModalityStore or OrthancPeerStore), so it is listed in
-- /jobs, survives a restart (Orthanc saves its jobs), and, when it fails because the
-- destination is down, is resubmitted by the plugin's routing extension with growing
-- delays. Lua itself has no timer in Orthanc 1.10, hence retries are not done here.
--
-- OnStableSeries fires once per series, StableAge seconds after its last instance: a study
-- goes series by series, and a series made later (a reconstruction, a signed report) is
-- sent when it becomes stable in its turn. A series that receives more instances after it
-- was sent becomes stable again and is sent again whole (the destination keeps one copy of
-- each instance: same SOP Instance UIDs).

local function Escape(text)
  return (string.gsub(text, '[%^%$%(%)%%%.%[%]%+%-]', '%%%0'))
end

-- DICOM's wildcards (* and ?), case-insensitive, on the whole value.
local function Like(pattern, value)
  local expression = Escape(string.upper(pattern))
  expression = string.gsub(expression, '%*', '.*')
  expression = string.gsub(expression, '%?', '.')
  return string.find(string.upper(value), '^' .. expression .. '$') ~= nil
end

local function AnyLike(wanted, value)
  if type(wanted) ~= 'table' then
    wanted = { wanted }
  end
  for _, pattern in ipairs(wanted) do
    if Like(tostring(pattern), value) then
      return true
    end
  end
  return false
end

-- The metadata Orthanc recorded for the series' first instance (RemoteAET, CalledAET).
local function InstanceMetadata(seriesId, name)
  local series = ParseJson(RestApiGet('/series/' .. seriesId, true))
  local first = series['Instances'][1]
  if first == nil then
    return ''
  end
  local names = ParseJson(RestApiGet('/instances/' .. first .. '/metadata', true))
  for _, present in ipairs(names) do
    if present == name then
      return RestApiGet('/instances/' .. first .. '/metadata/' .. name, true)
    end
  end
  return ''
end

local FROM_METADATA = { CallingAet = 'RemoteAET', CalledAet = 'CalledAET' }

local function Matches(rule, seriesId, tags)
  if type(rule['Match']) ~= 'table' or next(rule['Match']) == nil then
    return false
  end
  for key, wanted in pairs(rule['Match']) do
    local value
    if FROM_METADATA[key] then
      value = InstanceMetadata(seriesId, FROM_METADATA[key])
    else
      value = tags[key] or ''
    end
    if not AnyLike(wanted, value) then
      return false
    end
  end
  return true
end

-- 'modalities' or 'peers' when the destination is configured, nil otherwise.
local function Kind(destination)
  for _, kind in ipairs({ 'modalities', 'peers' }) do
    for _, name in ipairs(ParseJson(RestApiGet('/' .. kind, true))) do
      if name == destination then
        return kind
      end
    end
  end
  return nil
end

local function Send(rule, seriesId, destination)
  local kind = Kind(destination)
  if kind == nil then
    print('Routing: rule "' .. rule['Name'] .. '" matched series ' .. seriesId ..
          ' but "' .. destination .. '" is neither a DICOM modality nor an Orthanc peer' ..
          ' of this server: not sent')
    return
  end
  local request = DumpJson({ Resources = { seriesId }, Asynchronous = true })
  local answer = ParseJson(RestApiPost('/' .. kind .. '/' .. destination .. '/store',
                                       request, true))
  print('Routing: rule "' .. rule['Name'] .. '" sends series ' .. seriesId .. ' to ' ..
        destination .. ' (job ' .. answer['ID'] .. ')')
end

function OnStableSeries(seriesId, tags, metadata)
  for index, rule in ipairs(RoutingRules or {}) do
    rule['Name'] = rule['Name'] or ('rule ' .. index)
    if Matches(rule, seriesId, tags) then
      for _, destination in ipairs(rule['SendTo'] or {}) do
        local sent, problem = pcall(Send, rule, seriesId, destination)
        if not sent then
          print('Routing: rule "' .. rule['Name'] .. '" could not send series ' .. seriesId ..
                ' to ' .. tostring(destination) .. ': ' .. tostring(problem))
        end
      end
    end
  end
end
