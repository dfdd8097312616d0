{{/* The EPP's objects: `<release>-epp`, as upstream names them. */}}
{{- define "epp.name" -}}
{{- printf "%s-epp" (.Release.Name | lower | trunc 40 | trimSuffix "-") -}}
{{- end -}}

{{/* Cluster-scoped objects need the namespace in their name. */}}
{{- define "epp.clusterName" -}}
{{- printf "%s-%s-epp" (.Release.Name | lower | trunc 40 | trimSuffix "-") (.Release.Namespace | lower | trunc 40 | trimSuffix "-") -}}
{{- end -}}

{{- define "epp.selectorLabels" -}}
inferencepool: {{ include "epp.name" . }}
{{- end -}}

{{/* The stable subset of epp.labels that selects the EPP's Service (ServiceMonitor). */}}
{{- define "epp.serviceSelectorLabels" -}}
app.kubernetes.io/name: {{ include "epp.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: endpoint-picker
{{- end -}}

{{- define "epp.labels" -}}
app.kubernetes.io/name: {{ include "epp.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: endpoint-picker
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The pool's API group, from inferencePool.apiVersion. */}}
{{- define "epp.poolGroup" -}}
{{- index (splitList "/" .Values.inferencePool.apiVersion) 0 -}}
{{- end -}}

{{- define "epp.ha" -}}
{{- if gt (int .Values.inferenceExtension.replicas) 1 }}true{{ end -}}
{{- end -}}

{{/* Checks that fail the render with a message instead of producing a broken release. */}}
{{- define "epp.validate" -}}
{{- if not .Values.inferencePool.modelServers.matchLabels -}}
{{- fail "inferencePool.modelServers.matchLabels is required: the labels of the model server pods" -}}
{{- end -}}
{{- if ne .Values.inferencePool.apiVersion "inference.networking.k8s.io/v1" -}}
{{- fail (printf "inferencePool.apiVersion %q: this chart renders inference.networking.k8s.io/v1 pools only" .Values.inferencePool.apiVersion) -}}
{{- end -}}
{{- $n := len (.Values.inferencePool.targetPorts | default list) -}}
{{- if or (lt $n 1) (gt $n 8) -}}
{{- fail "inferencePool.targetPorts needs 1 to 8 ports" -}}
{{- end -}}
{{- if lt (int .Values.inferenceExtension.replicas) 1 -}}
{{- fail "inferenceExtension.replicas must be at least 1" -}}
{{- end -}}
{{- if not (has .Values.inferencePool.modelServerProtocol (list "http" "grpc")) -}}
{{- fail "inferencePool.modelServerProtocol must be http or grpc" -}}
{{- end -}}
{{- $file := .Values.inferenceExtension.pluginsConfigFile -}}
{{- if not (or (eq $file "default-plugins.yaml") (hasKey .Values.inferenceExtension.pluginsCustomConfig $file)) -}}
{{- fail (printf "inferenceExtension.pluginsConfigFile %q is neither default-plugins.yaml nor a key of inferenceExtension.pluginsCustomConfig" $file) -}}
{{- end -}}
{{- if not (has .Values.provider.name (include "epp.providers" . | splitList " ")) -}}
{{- fail (printf "provider.name %q: must be one of: %s" .Values.provider.name (include "epp.providers" .)) -}}
{{- end -}}
{{- if not (has .Values.inferenceExtension.failureMode (list "FailOpen" "FailClose")) -}}
{{- fail (printf "inferenceExtension.failureMode %q: must be FailOpen or FailClose" .Values.inferenceExtension.failureMode) -}}
{{- end -}}
{{- if not (has .Values.inferenceExtension.responseMode (list "lean" "compatible")) -}}
{{- fail (printf "inferenceExtension.responseMode %q: must be lean or compatible" .Values.inferenceExtension.responseMode) -}}
{{- end -}}
{{- end -}}

{{/* The gateways this chart renders objects for (provider.name). */}}
{{- define "epp.providers" -}}
none istio gke envoy-gateway kgateway
{{- end -}}
