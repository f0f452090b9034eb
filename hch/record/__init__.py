"""Recording a run: the trace graph, its file format, the live journal, the files a run claims, its summary."""
