{{/*
Names, labels and the pieces of a pod every component shares.
Templates that take a component are called with (dict "root" $ "name" $name "c" $component).
*/}}

{{/* The release's prefix: "<release>-helpdesk", or the release name when it already says helpdesk. */}}
{{- define "helpdesk.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* A component's object name, e.g. helpdesk-intake (50 + 1 + 12 characters at most). */}}
{{- define "helpdesk.componentName" -}}
{{- printf "%s-%s" (include "helpdesk.fullname" .root) .name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* A component's gRPC address inside the release's namespace, e.g. helpdesk-intake:50051. */}}
{{- define "helpdesk.grpcTarget" -}}
{{- $c := index .root.Values.components .name -}}
{{- printf "%s:%v" (include "helpdesk.componentName" .) (int $c.grpcPort) -}}
{{- end -}}

{{- define "helpdesk.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels on every object of the release. */}}
{{- define "helpdesk.labels" -}}
helm.sh/chart: {{ include "helpdesk.chart" . }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: helpdesk
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* What selects one component's pods; never change these on a running release (selectors are immutable). */}}
{{- define "helpdesk.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{/* Every pod of this release, whatever its component (NetworkPolicy peers). */}}
{{- define "helpdesk.releaseSelector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "helpdesk.componentLabels" -}}
{{ include "helpdesk.labels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{/* <registry>/<repository>:<tag>; the registry may be empty. */}}
{{- define "helpdesk.image" -}}
{{- $tag := .c.image.tag | default .root.Values.image.tag | default .root.Chart.AppVersion -}}
{{- if .root.Values.image.registry -}}
{{- printf "%s/%s:%s" (trimSuffix "/" .root.Values.image.registry) .c.image.repository $tag -}}
{{- else -}}
{{- printf "%s:%s" .c.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* The enabled components, sorted, as a list of names. */}}
{{- define "helpdesk.enabledComponents" -}}
{{- $names := list -}}
{{- range $name, $c := .Values.components -}}
{{- if $c.enabled -}}{{- $names = append $names $name -}}{{- end -}}
{{- end -}}
{{- toJson $names -}}
{{- end -}}

{{/* The container securityContext of every pod of the chart: not configurable on purpose. */}}
{{- define "helpdesk.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.podSecurity.runAsUser }}
runAsGroup: {{ .Values.podSecurity.runAsGroup }}
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
privileged: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "helpdesk.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.podSecurity.runAsUser }}
runAsGroup: {{ .Values.podSecurity.runAsGroup }}
fsGroup: {{ .Values.podSecurity.fsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Kafka client settings and secrets shared by the services and the topics Job. */}}
{{- define "helpdesk.kafkaEnv" -}}
- name: HELPDESK_KAFKA_BOOTSTRAP_SERVERS
  value: {{ .Values.kafka.bootstrapServers | quote }}
- name: HELPDESK_KAFKA_SECURITY_PROTOCOL
  value: {{ .Values.kafka.securityProtocol | quote }}
{{- with .Values.kafka.sasl }}
{{- if .existingSecret }}
- name: HELPDESK_KAFKA_SASL_MECHANISM
  value: {{ .mechanism | quote }}
- name: HELPDESK_KAFKA_SASL_USERNAME
  valueFrom:
    secretKeyRef: {name: {{ .existingSecret | quote }}, key: {{ .usernameKey | quote }}}
- name: HELPDESK_KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ .existingSecret | quote }}, key: {{ .passwordKey | quote }}}
{{- end }}
{{- end }}
{{- with .Values.kafka.tls }}
{{- if .existingSecret }}
- name: HELPDESK_KAFKA_SSL_CAFILE
  value: /etc/helpdesk/kafka-tls/{{ .caKey }}
{{- if .certKey }}
- name: HELPDESK_KAFKA_SSL_CERTFILE
  value: /etc/helpdesk/kafka-tls/{{ .certKey }}
- name: HELPDESK_KAFKA_SSL_KEYFILE
  value: /etc/helpdesk/kafka-tls/{{ .keyKey }}
{{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The Kafka TLS Secret as a read-only volume, when one is named. */}}
{{- define "helpdesk.kafkaTlsVolume" -}}
{{- with .Values.kafka.tls }}
{{- if .existingSecret }}
- name: kafka-tls
  secret:
    secretName: {{ .existingSecret | quote }}
    defaultMode: 0440
{{- end }}
{{- end }}
{{- end -}}

{{- define "helpdesk.kafkaTlsMount" -}}
{{- if .Values.kafka.tls.existingSecret }}
- name: kafka-tls
  mountPath: /etc/helpdesk/kafka-tls
  readOnly: true
{{- end }}
{{- end -}}

{{/* Egress rules: one per port list, to the given peers or (none given) anywhere. */}}
{{- define "helpdesk.egressRule" -}}
- ports:
  {{- range .ports }}
    - {protocol: TCP, port: {{ . }}}
  {{- end }}
  {{- with .peers }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}

{{/* Egress to cluster DNS, which every pod needs. */}}
{{- define "helpdesk.dnsEgress" -}}
- to:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: {{ .Values.networkPolicy.dns.namespace | quote }}
      {{- with .Values.networkPolicy.dns.podSelector }}
      podSelector:
        matchLabels:
          {{- toYaml . | nindent 10 }}
      {{- end }}
  ports:
    - {protocol: UDP, port: 53}
    - {protocol: TCP, port: 53}
{{- end -}}

{{/* What the values schema cannot say: relations between a component's values. */}}
{{- define "helpdesk.validate" -}}
{{- $c := .c -}}
{{- /* int: values from files are floats, from --set integers; uniq compares both */ -}}
{{- $ports := list (int $c.grpcPort) (int $c.metricsPort) -}}
{{- if $c.httpPort }}{{ $ports = append $ports (int $c.httpPort) }}{{ end -}}
{{- range $c.calls -}}
{{- $callee := index $.root.Values.components . -}}
{{- if or (eq . $.name) (not $callee) (not ($callee | default dict).enabled) -}}
{{- fail (printf "components.%s.calls: %s is not another enabled component (to reach one outside this release, drop it from calls and set settings.%s_TARGET)" $.name . (upper . | replace "-" "_")) -}}
{{- end -}}
{{- end -}}
{{- if ne (len $ports) (len (uniq $ports)) -}}
{{- fail (printf "components.%s: grpcPort, metricsPort and httpPort must differ (got %v)" .name $ports) -}}
{{- end -}}
{{- /* a mail relay the NetworkPolicy blocks would only show as SMTP timeouts */ -}}
{{- $settings := $c.settings | default dict -}}
{{- if and .root.Values.networkPolicy.enabled (hasKey $settings "SMTP_PORT") -}}
{{- $smtp := int (get $settings "SMTP_PORT") -}}
{{- $open := false -}}
{{- range $c.egress }}{{ range .ports }}{{ if eq (int .) $smtp }}{{ $open = true }}{{ end }}{{ end }}{{ end -}}
{{- range .root.Values.networkPolicy.extraEgress }}{{ range .ports }}{{ if eq (toString .port) (toString $smtp) }}{{ $open = true }}{{ end }}{{ end }}{{ end -}}
{{- if not $open -}}
{{- fail (printf "components.%s.settings.SMTP_PORT (%d) is in no rule of components.%s.egress (nor networkPolicy.extraEgress): the NetworkPolicy would block mail" .name $smtp .name) -}}
{{- end -}}
{{- end -}}
{{- $replicas := $c.replicas -}}
{{- if $c.autoscaling.enabled -}}
{{- if gt (int $c.autoscaling.minReplicas) (int $c.autoscaling.maxReplicas) -}}
{{- fail (printf "components.%s.autoscaling: minReplicas (%v) is above maxReplicas (%v)" .name $c.autoscaling.minReplicas $c.autoscaling.maxReplicas) -}}
{{- end -}}
{{- $replicas = $c.autoscaling.minReplicas -}}
{{- end -}}
{{- if and $c.podDisruptionBudget.enabled (not (kindIs "string" $c.podDisruptionBudget.minAvailable)) -}}
{{- if ge (int $c.podDisruptionBudget.minAvailable) (int $replicas) -}}
{{- fail (printf "components.%s.podDisruptionBudget.minAvailable (%v) must be below the replica count (%v), or no node could ever be drained" .name $c.podDisruptionBudget.minAvailable $replicas) -}}
{{- end -}}
{{- end -}}
{{- end -}}
