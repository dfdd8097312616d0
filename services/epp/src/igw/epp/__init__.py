"""igw Endpoint Picker (EPP): picks the model-server endpoint for each inference request.

The packages, in layers; each imports only from the layers below it (DESIGN §3.1;
`tests/test_architecture.py` checks this on the import graph, `TYPE_CHECKING` imports included):

    0  endpoints, units              the values every part shares
    1  framework                     plugin protocol, typed kinds, params, registry, cycle state
    2  datalayer, parsers,           plugins of the framework and what runs them (the datastore,
       scheduling, requestcontrol,   the scheduler, the request-control hooks and admission)
       flowcontrol
    3  config                        EndpointPickerConfig: builds every plugin through the registry
    4  requestpath, discovery        director and exchange; where endpoints come from
    5  admin                         ListEndpoints and Explain
    6  server, cli                   assembly and flags
"""
