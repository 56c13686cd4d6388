{{/*
The pod template of one service: (dict "root" $ "name" $name "c" $component).
*/}}
{{- define "helpdesk.podTemplate" -}}
{{- $root := .root -}}
{{- $c := .c -}}
{{- $v := $root.Values -}}
metadata:
  labels:
    {{- include "helpdesk.componentLabels" . | nindent 4 }}
    {{- with $c.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- if or $v.prometheus.scrapeAnnotations $c.podAnnotations }}
  annotations:
    {{- if $v.prometheus.scrapeAnnotations }}
    prometheus.io/scrape: "true"
    prometheus.io/port: {{ $c.metricsPort | quote }}
    prometheus.io/path: /metrics
    {{- end }}
    {{- with $c.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
spec:
  serviceAccountName: {{ include "helpdesk.componentName" . }}
  # The services never call the Kubernetes API.
  automountServiceAccountToken: false
  enableServiceLinks: false
  terminationGracePeriodSeconds: {{ $v.terminationGracePeriodSeconds }}
  securityContext:
    {{- include "helpdesk.podSecurityContext" $root | nindent 4 }}
  {{- with $v.image.pullSecrets }}
  imagePullSecrets:
    {{- range . }}
    - name: {{ . | quote }}
    {{- end }}
  {{- end }}
  {{- if $v.topologySpread.enabled }}
  topologySpreadConstraints:
    {{- range $key, $when := dict "topology.kubernetes.io/zone" $v.topologySpread.zoneWhenUnsatisfiable "kubernetes.io/hostname" $v.topologySpread.hostnameWhenUnsatisfiable }}
    - maxSkew: 1
      topologyKey: {{ $key }}
      whenUnsatisfiable: {{ $when }}
      labelSelector:
        matchLabels:
          {{- include "helpdesk.selectorLabels" $ | nindent 10 }}
      # count only the pods of the same rollout, so a rolling update does not skew itself
      matchLabelKeys: [pod-template-hash]
    {{- end }}
  {{- end }}
  {{- with $c.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $c.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $c.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  containers:
    - name: {{ .name }}
      image: {{ include "helpdesk.image" . | quote }}
      imagePullPolicy: {{ $v.image.pullPolicy }}
      securityContext:
        {{- include "helpdesk.containerSecurityContext" $root | nindent 8 }}
      ports:
        - {name: grpc, containerPort: {{ $c.grpcPort }}, protocol: TCP}
        - {name: metrics, containerPort: {{ $c.metricsPort }}, protocol: TCP}
        {{- if $c.httpPort }}
        - {name: http, containerPort: {{ $c.httpPort }}, protocol: TCP}
        {{- end }}
      env:
        {{- include "helpdesk.env" . | nindent 8 }}
      resources:
        {{- toYaml $c.resources | nindent 8 }}
      startupProbe:
        tcpSocket: {port: grpc}
        {{- toYaml $v.probes.startup | nindent 8 }}
      # SERVING only while MongoDB and Kafka answer and the process is not draining.
      readinessProbe:
        grpc: {port: {{ $c.grpcPort }}}
        {{- toYaml $v.probes.readiness | nindent 8 }}
      # Not the dependency-following health: a MongoDB or Kafka outage must not restart
      # every replica at once (see values.yaml, probes.liveness).
      livenessProbe:
        {{- with $v.probes.liveness }}
        {{- if .grpcService }}
        grpc: {port: {{ $c.grpcPort }}, service: {{ .grpcService | quote }}}
        {{- else }}
        tcpSocket: {port: grpc}
        {{- end }}
        periodSeconds: {{ .periodSeconds }}
        timeoutSeconds: {{ .timeoutSeconds }}
        failureThreshold: {{ .failureThreshold }}
        {{- end }}
      {{- if $v.preStopSleepSeconds }}
      lifecycle:
        preStop:
          sleep: {seconds: {{ $v.preStopSleepSeconds }}}
      {{- end }}
      volumeMounts:
        # the only writable path: the root file system is read-only
        - {name: tmp, mountPath: /tmp}
        {{- with include "helpdesk.kafkaTlsMount" $root }}{{ . | trim | nindent 8 }}{{ end }}
  volumes:
    - name: tmp
      emptyDir: {sizeLimit: {{ $v.tmpSizeLimit }}}
    {{- with include "helpdesk.kafkaTlsVolume" $root }}{{ . | trim | nindent 4 }}{{ end }}
{{- end -}}

{{/* The environment of one service: HELPDESK_* settings, secrets, OTEL_*. */}}
{{- define "helpdesk.env" -}}
{{- $root := .root -}}
{{- $c := .c -}}
{{- $v := $root.Values -}}
- name: POD_NAME
  valueFrom: {fieldRef: {fieldPath: metadata.name}}
- name: POD_NAMESPACE
  valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
- name: NODE_NAME
  valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
- name: HELPDESK_GRPC_PORT
  value: {{ $c.grpcPort | quote }}
- name: HELPDESK_METRICS_PORT
  value: {{ $c.metricsPort | quote }}
{{- if $c.httpPort }}
- name: HELPDESK_HTTP_PORT
  value: {{ $c.httpPort | quote }}
{{- end }}
- name: HELPDESK_LOG_LEVEL
  value: {{ $v.log.level | quote }}
- name: HELPDESK_LOG_FORMAT
  value: {{ $v.log.format | quote }}
- name: HELPDESK_SHUTDOWN_GRACE_SECONDS
  value: {{ $v.shutdownGraceSeconds | quote }}
- name: HELPDESK_HEALTH_CHECK_INTERVAL_SECONDS
  value: {{ $v.healthCheckIntervalSeconds | quote }}
- name: HELPDESK_MONGODB_URI
  valueFrom:
    secretKeyRef: {name: {{ $v.mongodb.existingSecret | quote }}, key: {{ $v.mongodb.uriKey | quote }}}
- name: HELPDESK_MONGODB_DATABASE
  value: {{ $c.mongodbDatabase | quote }}
{{ include "helpdesk.kafkaEnv" $root }}
{{- if $v.kafka.topics.create }}
# The topics Job creates the topics with the configured partitions and replication.
- name: HELPDESK_KAFKA_CREATE_TOPICS
  value: "false"
{{- end }}
{{- range $key, $value := $c.settings }}
- name: HELPDESK_{{ $key }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- /* the services it calls, by their Service in this release, unless settings name them */}}
{{- range $c.calls }}
{{- $key := printf "%s_TARGET" (upper . | replace "-" "_") }}
{{- if not (hasKey ($c.settings | default dict) $key) }}
- name: HELPDESK_{{ $key }}
  value: {{ include "helpdesk.grpcTarget" (dict "root" $root "name" .) | quote }}
{{- end }}
{{- end }}
- name: OTEL_SERVICE_NAME
  value: {{ .name | quote }}
{{- $attributes := list "service.namespace=helpdesk" "k8s.namespace.name=$(POD_NAMESPACE)" "k8s.pod.name=$(POD_NAME)" "k8s.node.name=$(NODE_NAME)" (printf "k8s.deployment.name=%s" (include "helpdesk.componentName" .)) }}
{{- range $key, $value := $v.otel.resourceAttributes }}
{{- $attributes = append $attributes (printf "%s=%s" $key (toString $value)) }}
{{- end }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ join "," $attributes | quote }}
{{- with $v.otel.exporterEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- with $v.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- with $c.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}
