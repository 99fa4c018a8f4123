/* OHIF served by Orthanc at /ohif/, reading Orthanc's own DICOMweb (same origin: the
 * sign-in cookies authenticate every request, and the gate checks each one). */

/* A CBCT study holds the raw projections (an XA multi-frame series, SeriesNumber 100) and
 * their reconstruction (a CT series, SeriesNumber 200, written by hounsfield.recon). OHIF's
 * 'default' protocol hangs the first series with images, the projections; this one is OHIF
 * 3.13.2's 'default' with two more rules, so a CT series outranks other image series (a plain
 * CT study is unaffected), a full reconstruction outranks a PREVIEW one, and a series named
 * in the URL still wins. */
const hydrateSegmentations = {
  type: 'hydrateseg',
  id: 'sameFORId',
  source: true,
  target: true,
  options: { matchingRules: ['sameFOR'] },
};
const readingProtocol = {
  id: 'hounsfield.reconstructionFirst',
  name: 'Hounsfield: reconstruction first',
  locked: true,
  protocolMatchingRules: [],
  toolGroupIds: ['default'],
  numberOfPriorsReferenced: 0,
  defaultViewport: {
    viewportOptions: {
      viewportType: 'stack',
      toolGroupId: 'default',
      allowUnmatchedView: true,
      syncGroups: [hydrateSegmentations],
    },
    displaySets: [{ id: 'defaultDisplaySetId', matchedDisplaySetsIndex: -1 }],
  },
  displaySetSelectors: {
    defaultDisplaySetId: {
      seriesMatchingRules: [
        { weight: 10, attribute: 'numImageFrames', constraint: { greaterThan: { value: 0 } } },
        { weight: 5, attribute: 'Modality', constraint: { equals: 'CT' } },
        { weight: 1, attribute: 'SeriesDescription', constraint: { doesNotContain: 'PREVIEW' } },
        { weight: 20, attribute: 'isDisplaySetFromUrl', constraint: { equals: true } },
      ],
    },
  },
  stages: [
    {
      name: 'default',
      viewportStructure: { layoutType: 'grid', properties: { rows: 1, columns: 1 } },
      viewports: [
        {
          viewportOptions: {
            viewportType: 'stack',
            viewportId: 'default',
            toolGroupId: 'default',
            syncGroups: [hydrateSegmentations],
            // The image named in the URL, else the middle one: the first slice of a
            // reconstruction is the edge of its field of view, all air.
            initialImageOptions: {
              custom: 'sopInstanceLocation',
              defaultValue: { preset: 'middle' },
            },
          },
          displaySets: [{ id: 'defaultDisplaySetId' }],
        },
      ],
    },
  ],
};

/* The header (viewer and study list) shows the product's name where OHIF's logo was: OHIF
 * 3.13.2 renders whiteLabeling.createLogoComponentFn(React) in both places. */
function hounsfieldLogo(React) {
  const style = { color: '#ffffff', fontSize: '20px', fontWeight: 600, letterSpacing: '0.02em' };
  return React.createElement('span', { style, 'data-cy': 'hounsfield-logo' }, 'Hounsfield');
}

window.config = {
  routerBasename: '/ohif',
  whiteLabeling: { createLogoComponentFn: hounsfieldLogo },
  extensions: [
    {
      id: 'hounsfield',
      getHangingProtocolModule: () => [{ name: readingProtocol.id, protocol: readingProtocol }],
    },
  ],
  modes: [],
  modesConfiguration: {
    '@ohif/mode-longitudinal': { hangingProtocol: { $set: readingProtocol.id } },
  },
  showStudyList: true,
  investigationalUseDialog: { option: 'never' },
  showWarningMessageForCrossOrigin: false,
  showCPUFallbackMessage: false,
  maxNumberOfWebWorkers: 2,
  defaultDataSourceName: 'orthanc',
  customizationService: [{ 'ohif.tours': { $set: [] } }],
  dataSources: [
    {
      namespace: '@ohif/extension-default.dataSourcesModule.dicomweb',
      sourceName: 'orthanc',
      configuration: {
        friendlyName: 'Hounsfield (Orthanc)',
        name: 'orthanc',
        qidoRoot: '/dicom-web',
        wadoRoot: '/dicom-web',
        wadoUriRoot: '/wado',
        qidoSupportsIncludeField: false,
        imageRendering: 'wadors',
        thumbnailRendering: 'wadors',
        enableStudyLazyLoad: true,
        supportsFuzzyMatching: false,
        supportsWildcard: true,
        staticWado: false,
        singlepart: 'bulkdata,video',
        omitQuotationForMultipartRequest: true,
        bulkDataURI: { enabled: true },
      },
    },
  ],
};
