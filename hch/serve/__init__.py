"""`hch serve`: many people as H. Participants answer workspaces from a queue in their browsers while runs go.

Modules: `tokens` (the secrets in links), `store` (durable state in SQLite), `assignment` (the HCH barrier:
who may take which workspace), `desk` (the live queue the web policy and the pages meet at), `policy` (the
`web` policy), `jobs` (the runs and sweeps a server drives), `app` (the Starlette routes and pages).
"""
