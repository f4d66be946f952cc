"""The job: stages in order, the services a run starts (Ray, reward service, rollout fleet), model paths
and the tiny offline model. Wires the components below it together; nothing below imports it."""
