/*
 * Hounsfield route claims: hands the POST side of some URIs from DICOMweb to Python.
 *
 * Orthanc 1.10 gives a POST to the first *chunked* REST callback whose pattern matches,
 * and only when that callback has no POST handler does it read the body and offer the
 * request to the regular callbacks, where the Python plugin's are. Orthanc's DICOMweb
 * plugin (1.7) registers STOW-RS as chunked, so without this plugin no Python code can
 * answer `POST /dicom-web/studies`, and DICOMweb answers "stored" for objects the store
 * discarded. Loaded after the Python plugin and before DICOMweb, this plugin registers the
 * patterns that the Python plugin names in HOUNSFIELD_CLAIMED_ROUTES (one per line, set
 * while its script runs) as chunked callbacks with no handlers at all: every method on
 * them then reaches the Python plugin's regular callbacks. It holds no other logic.
 */

#include <orthanc/OrthancCPlugin.h>

#include <stdlib.h>
#include <string.h>

#define CLAIMS_VARIABLE "HOUNSFIELD_CLAIMED_ROUTES"
#define LOADED_VARIABLE "HOUNSFIELD_ROUTE_CLAIMS_LOADED"

ORTHANC_PLUGINS_API int32_t OrthancPluginInitialize(OrthancPluginContext* context)
{
  const char* claims = getenv(CLAIMS_VARIABLE);
  if (claims == NULL || claims[0] == '\0')
  {
    OrthancPluginLogError(context, "hounsfield-route-claims: " CLAIMS_VARIABLE " is not set: "
                          "load this plugin after the Python plugin");
    return -1;
  }

  char* copy = strdup(claims);
  if (copy == NULL)
  {
    return -1;
  }

  char* saved = NULL;
  for (char* pattern = strtok_r(copy, "\n", &saved); pattern != NULL;
       pattern = strtok_r(NULL, "\n", &saved))
  {
    OrthancPluginRegisterChunkedRestCallback(context, pattern, NULL, NULL, NULL, NULL,
                                             NULL, NULL, NULL);
  }

  free(copy);
  setenv(LOADED_VARIABLE, "1", 1);  /* what the Python plugin checks at start */
  return 0;
}

ORTHANC_PLUGINS_API void OrthancPluginFinalize(void)
{
}

ORTHANC_PLUGINS_API const char* OrthancPluginGetName(void)
{
  return "hounsfield-route-claims";
}

ORTHANC_PLUGINS_API const char* OrthancPluginGetVersion(void)
{
  return "1.0";
}
