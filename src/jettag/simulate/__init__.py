"""Simulation: Pythia 8 events, FastJet jets, truth labels and a parametrised tracker."""
