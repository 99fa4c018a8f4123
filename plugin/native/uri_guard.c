/*
 * Hounsfield URI guard: refuses requests whose URI, arguments or headers are not UTF-8.
 *
 * Orthanc 1.10 percent-decodes the URI and the GET arguments before plugins see them, so
 * `GET /studies/%80` reaches them with a lone byte 0x80. The Python plugin (4.0) cannot
 * make a Python string of it ("Cannot create a Python string"): its HTTP filter fails and
 * Orthanc answers 500 on every route, its own included, before any Python code runs.
 * Orthanc asks the filters in the order they were registered and stops at the first
 * refusal, so this plugin, loaded before the Python plugin, refuses such a request first:
 * 403, the only refusal a filter can give in Orthanc 1.10. It holds no other logic.
 */

#include <orthanc/OrthancCPlugin.h>

#include <stdint.h>
#include <stdlib.h>

/* Well-formed UTF-8 as Python decodes it strictly: no overlong forms, no surrogates,
 * nothing above U+10FFFF (Unicode 15, table 3-7). */
static int is_utf8(const char* text)
{
  const unsigned char* s = (const unsigned char*) text;
  while (*s != 0)
  {
    unsigned char c = s[0];
    if (c < 0x80)
    {
      s += 1;
      continue;
    }
    int length;
    unsigned char low = 0x80, high = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF)
    {
      length = 2;
    }
    else if (c >= 0xE0 && c <= 0xEF)
    {
      length = 3;
      if (c == 0xE0)
      {
        low = 0xA0; /* overlong below U+0800 */
      }
      else if (c == 0xED)
      {
        high = 0x9F; /* surrogates U+D800-U+DFFF */
      }
    }
    else if (c >= 0xF0 && c <= 0xF4)
    {
      length = 4;
      if (c == 0xF0)
      {
        low = 0x90; /* overlong below U+10000 */
      }
      else if (c == 0xF4)
      {
        high = 0x8F; /* above U+10FFFF */
      }
    }
    else
    {
      return 0;
    }
    if (s[1] < low || s[1] > high)
    {
      return 0;
    }
    for (int i = 2; i < length; i++)
    {
      if (s[i] < 0x80 || s[i] > 0xBF)
      {
        return 0;
      }
    }
    s += length;
  }
  return 1;
}

static int all_utf8(uint32_t count, const char* const* texts)
{
  for (uint32_t i = 0; i < count; i++)
  {
    if (!is_utf8(texts[i]))
    {
      return 0;
    }
  }
  return 1;
}

static int32_t guard(OrthancPluginHttpMethod method, const char* uri, const char* ip,
                     uint32_t headersCount, const char* const* headersKeys,
                     const char* const* headersValues, uint32_t getArgumentsCount,
                     const char* const* getArgumentsKeys,
                     const char* const* getArgumentsValues)
{
  (void) method;
  return is_utf8(uri) && is_utf8(ip) && all_utf8(headersCount, headersKeys) &&
         all_utf8(headersCount, headersValues) &&
         all_utf8(getArgumentsCount, getArgumentsKeys) &&
         all_utf8(getArgumentsCount, getArgumentsValues);
}

ORTHANC_PLUGINS_API int32_t OrthancPluginInitialize(OrthancPluginContext* context)
{
  OrthancPluginRegisterIncomingHttpRequestFilter2(context, guard);
  return 0;
}

ORTHANC_PLUGINS_API void OrthancPluginFinalize(void)
{
}

ORTHANC_PLUGINS_API const char* OrthancPluginGetName(void)
{
  return "hounsfield-uri-guard";
}

ORTHANC_PLUGINS_API const char* OrthancPluginGetVersion(void)
{
  return "1.0";
}
