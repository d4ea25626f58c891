"""What comes back from people and apps, as pure rules: rewards now; poll answers, review tasks, anomaly,
drift and KPI maths later. No Flask, no database: plain values in, plain values out."""
