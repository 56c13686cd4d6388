{{/*
The objects of one service, each called with (dict "root" $ "name" $name "c" $component);
templates/components.yaml loops over the enabled components and includes them.
*/}}

{{- define "helpdesk.deployment" -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "helpdesk.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "helpdesk.componentLabels" . | nindent 4 }}
  {{- with .c.deploymentAnnotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  {{- if not .c.autoscaling.enabled }}
  replicas: {{ .c.replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "helpdesk.selectorLabels" . | nindent 6 }}
  strategy:
    type: RollingUpdate
    # a new pod is ready (MongoDB and Kafka reachable) before an old one goes
    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}
  template:
    {{- include "helpdesk.podTemplate" . | nindent 4 }}
{{- end -}}

{{- define "helpdesk.service" -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "helpdesk.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "helpdesk.componentLabels" . | nindent 4 }}
spec:
  type: ClusterIP
  selector:
    {{- include "helpdesk.selectorLabels" . | nindent 4 }}
  ports:
    - {name: grpc, port: {{ .c.grpcPort }}, targetPort: grpc, protocol: TCP, appProtocol: grpc}
    - {name: metrics, port: {{ .c.metricsPort }}, targetPort: metrics, protocol: TCP, appProtocol: http}
    {{- if .c.httpPort }}
    - {name: http, port: {{ .c.httpPort }}, targetPort: http, protocol: TCP, appProtocol: http}
    {{- end }}
{{- end -}}

{{- define "helpdesk.serviceAccount" -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "helpdesk.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "helpdesk.componentLabels" . | nindent 4 }}
  {{- with .root.Values.serviceAccount.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
automountServiceAccountToken: false
{{- end -}}

{{- define "helpdesk.hpa" -}}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "helpdesk.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "helpdesk.componentLabels" . | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "helpdesk.componentName" . }}
  minReplicas: {{ .c.autoscaling.minReplicas }}
  maxReplicas: {{ .c.autoscaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target: {type: Utilization, averageUtilization: {{ .c.autoscaling.targetCPUUtilizationPercentage }}}
  behavior:
    # consumer-group rebalances follow every scale step: scale down slowly
    scaleDown:
      stabilizationWindowSeconds: 300
      policies:
        - {type: Pods, value: 1, periodSeconds: 120}
{{- end -}}

{{- define "helpdesk.pdb" -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "helpdesk.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "helpdesk.componentLabels" . | nindent 4 }}
spec:
  minAvailable: {{ .c.podDisruptionBudget.minAvailable }}
  # Readiness follows MongoDB and Kafka: during their outage every pod is unready, and the
  # default policy would then block node drains; unready pods serve nothing, so let them go.
  unhealthyPodEvictionPolicy: AlwaysAllow
  selector:
    matchLabels:
      {{- include "helpdesk.selectorLabels" . | nindent 6 }}
{{- end -}}

{{- define "helpdesk.networkPolicy" -}}
{{- $v := .root.Values -}}
{{- $np := $v.networkPolicy -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "helpdesk.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "helpdesk.componentLabels" . | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "helpdesk.selectorLabels" . | nindent 6 }}
  policyTypes: [Ingress, Egress]
  ingress:
    # gRPC (and HTTP channels): the other helpdesk services, the namespace when allowed,
    # and the configured peers
    - ports:
        - {protocol: TCP, port: {{ .c.grpcPort }}}
        {{- if .c.httpPort }}
        - {protocol: TCP, port: {{ .c.httpPort }}}
        {{- end }}
      from:
        {{- if $np.ingress.allowSameNamespace }}
        - podSelector: {}
        {{- else }}
        - podSelector:
            matchLabels:
              {{- include "helpdesk.releaseSelector" .root | nindent 14 }}
        {{- end }}
        {{- with $np.ingress.from }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    # metrics: the monitoring namespace only
    - ports:
        - {protocol: TCP, port: {{ .c.metricsPort }}}
      from:
        - namespaceSelector:
            matchLabels:
              kubernetes.io/metadata.name: {{ $np.metrics.namespace | quote }}
          {{- with $np.metrics.podSelector }}
          podSelector:
            matchLabels:
              {{- toYaml . | nindent 14 }}
          {{- end }}
  egress:
    {{- include "helpdesk.dnsEgress" .root | nindent 4 }}
    # Kafka
    {{- include "helpdesk.egressRule" (dict "ports" $v.kafka.ports "peers" $v.kafka.networkPolicyPeers) | nindent 4 }}
    # MongoDB
    {{- include "helpdesk.egressRule" (dict "ports" $v.mongodb.ports "peers" $v.mongodb.networkPolicyPeers) | nindent 4 }}
    {{- if $v.otel.exporterEndpoint }}
    # OTLP exporter
    {{- include "helpdesk.egressRule" (dict "ports" $v.otel.ports "peers" $v.otel.networkPolicyPeers) | nindent 4 }}
    {{- end }}
    # the other helpdesk services' gRPC ports
    - to:
        - podSelector:
            matchLabels:
              {{- include "helpdesk.releaseSelector" .root | nindent 14 }}
      ports:
        {{- range $name, $other := $v.components }}
        {{- if $other.enabled }}
        - {protocol: TCP, port: {{ $other.grpcPort }}}
        {{- end }}
        {{- end }}
    {{- range .c.egress }}
    # components.{{ $.name }}.egress
    {{- include "helpdesk.egressRule" (dict "ports" .ports "peers" .peers) | nindent 4 }}
    {{- end }}
    {{- with $np.extraEgress }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end -}}

{{- define "helpdesk.serviceMonitor" -}}
{{- $op := .root.Values.prometheus.operator -}}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "helpdesk.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "helpdesk.componentLabels" . | nindent 4 }}
    {{- with $op.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  selector:
    matchLabels:
      {{- include "helpdesk.selectorLabels" . | nindent 6 }}
  namespaceSelector:
    matchNames: [{{ .root.Release.Namespace | quote }}]
  endpoints:
    - port: metrics
      path: /metrics
      interval: {{ $op.interval }}
      scrapeTimeout: {{ $op.scrapeTimeout }}
      relabelings:
        # dashboards and alerts can select a service by name, whatever the release is called
        - {action: replace, targetLabel: helpdesk_component, replacement: {{ .name | quote }}}
{{- end -}}
